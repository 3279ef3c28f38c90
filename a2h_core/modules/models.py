"""The four Audio2Head networks in one container whose state-dict keys are the converted checkpoint's keys."""
from __future__ import annotations

from torch import nn

from a2h_core.config import ModelConfig
from a2h_core.modules import HeadPosePredictor, KeypointDetector, MotionFieldGenerator, OcclusionAwareGenerator


class Audio2HeadModels(nn.Module):
    """`audio2pose`, `audio2kp`, `kp_detector` and `generator`, named as the published checkpoint's four state dicts.

    Built in eval mode: the networks are used for inference only, and batch norm must use its running statistics.
    """

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        config = ModelConfig.published() if config is None else config
        self.config = config
        self.audio2pose = HeadPosePredictor(config)
        self.audio2kp = MotionFieldGenerator(config)
        self.kp_detector = KeypointDetector(config)
        self.generator = OcclusionAwareGenerator(config)
        self.eval()
