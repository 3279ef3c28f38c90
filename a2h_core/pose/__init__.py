"""Head-pose curves: the curve and its edits, rotations, keyframes, files, and the pose-box rasteriser the motion
field generator reads."""
from a2h_core.pose.curve import DEFAULT_POSE, DEFAULT_YPR, FIT_MODES, POSE_COLUMNS, YPR_COLUMNS, PoseCurve
from a2h_core.pose.files import curve_from_dict, curve_to_dict, load_pose_curve, read_openface_csv, save_pose_curve
from a2h_core.pose.interpolation import INTERPOLATIONS, interpolate_keys
from a2h_core.pose.keyframes import curve_from_keyframes
from a2h_core.pose.rotations import matrix_to_rotvec, poses_to_ypr, rotvec_to_matrix, ypr_to_poses

__all__ = [
    "DEFAULT_POSE", "DEFAULT_YPR", "FIT_MODES", "INTERPOLATIONS", "POSE_COLUMNS", "YPR_COLUMNS", "PoseCurve",
    "curve_from_dict", "curve_from_keyframes", "curve_to_dict", "interpolate_keys", "load_pose_curve",
    "matrix_to_rotvec", "poses_to_ypr", "read_openface_csv", "rotvec_to_matrix", "save_pose_curve", "ypr_to_poses",
]
