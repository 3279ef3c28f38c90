"""The Audio2Head networks, one module per file (FOMM layout)."""
from a2h_core.modules.dense_motion import DenseMotionNetwork
from a2h_core.modules.generator import OcclusionAwareGenerator
from a2h_core.modules.keypoint_detector import KeypointDetector
from a2h_core.modules.motion_field import MotionFieldGenerator
from a2h_core.modules.pose_predictor import HeadPosePredictor, denormalize_poses, normalize_poses

__all__ = [
    "DenseMotionNetwork",
    "HeadPosePredictor",
    "KeypointDetector",
    "MotionFieldGenerator",
    "OcclusionAwareGenerator",
    "denormalize_poses",
    "normalize_poses",
]
