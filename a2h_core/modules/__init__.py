"""The Audio2Head networks, one module per file (FOMM layout)."""
from .dense_motion import DenseMotionNetwork
from .generator import OcclusionAwareGenerator
from .keypoint_detector import KeypointDetector
from .motion_field import MotionFieldGenerator
from .pose_predictor import HeadPosePredictor, denormalize_poses, normalize_poses

__all__ = [
    "DenseMotionNetwork",
    "HeadPosePredictor",
    "KeypointDetector",
    "MotionFieldGenerator",
    "OcclusionAwareGenerator",
    "denormalize_poses",
    "normalize_poses",
]
