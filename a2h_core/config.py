"""Hyper-parameters of the Audio2Head networks and the constants the original inference code uses.

`ModelConfig.published()` matches the released checkpoint (the original's `config/vox-256.yaml` and
`config/parameters.yaml`); `ModelConfig.reduced()` keeps every structural choice but shrinks the widths so that
tests can run forward passes on a small CPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FPS = 25  # video frame rate the model was trained at
FEATURE_ROWS_PER_FRAME = 4  # 10 ms audio feature rows per 40 ms video frame
NUM_AUDIO_FEATURES = 41  # 13 MFCC + 26 log filter bank + F0 + voiced flag
IMAGE_SIZE = 256  # side of the square source image and pose-box images
FEATURE_SAMPLE_RATE = 16000  # the features are computed on 16 kHz mono audio

# Limits on what input may ask for. Every size a file, widget or option controls is checked against these before
# anything is allocated, and refused with a message beyond them (README: "Limits"). A tiny file must never make a
# shared ComfyUI server allocate gigabytes.
MAX_SECONDS = 24 * 3600  # longest video, audio or pose curve: 24 hours
MAX_FRAMES = MAX_SECONDS * FPS  # 2,160,000 video frames (24 h at 25 fps)
MAX_POSES = MAX_FRAMES + 1  # longest pose curve: the frames of a 24 h video plus its end pose
MIN_POSE_FPS = 1.0  # slowest pose rate a curve, keyframe document or OpenFace file may have (poses per second)
MAX_POSE_FPS = 1000.0  # fastest pose rate (high-speed capture); OpenFace timestamps under 1 ms apart are refused
MAX_SMOOTH_SIGMA = 1000.0  # widest Gaussian smoothing, sigma in poses (40 s at 25 fps)
MAX_POSE_VALUE = 1e6  # largest |number| in a pose (radians or camera units); trained poses stay within +-400
MAX_BATCH_SIZE = 1024  # most frames per generator pass
MIN_IMAGE_SIDE = 32  # smallest source image (or crop box) side in pixels: below it no face can be seen
MAX_PLOT_SIDE = 8192  # largest side of a plot image, in pixels
MIN_AUDIO_RATE = 1000  # lowest audio sample rate accepted, Hz (a file claiming 1 Hz would resample to gigabytes)
MAX_AUDIO_RATE = 768000  # highest audio sample rate accepted, Hz

# Per-dimension range of the training poses (rx, ry, rz in radians; tx, ty, tz in camera units). The pose predictor
# works in [-1, 1] and these constants map its output back, exactly as the original inference code does.
POSE_MIN = np.array([-0.639, -0.501, -0.47, -102.6, -32.5, 184.6], dtype=np.float32)
POSE_MAX = np.array([0.411, 0.547, 0.433, 159.1, 116.5, 376.5], dtype=np.float32)


@dataclass(frozen=True)
class PosePredictorConfig:
    """Head-pose predictor (`audio2pose`): two ResNet-34 encoders feeding a 2-layer LSTM."""

    resnet_width: int = 64  # channels after the ResNet stem; stages use 1x, 2x, 4x, 8x of it
    embedding_dim: int = 256  # size of the audio and image embeddings (ResNet fc output)
    lstm_hidden: int = 256  # LSTM hidden size; equals embedding_dim because the output is fed back as the image slot
    lstm_layers: int = 2  # stacked LSTM layers
    pose_dim: int = 6  # axis-angle rotation (3) + translation (3)


@dataclass(frozen=True)
class MotionFieldConfig:
    """Motion field generator (`audio2kp`): 3-D hourglass over a window of frames."""

    block_expansion: int = 32  # channels of the first hourglass block
    max_features: int = 512  # channel cap inside the hourglass
    num_blocks: int = 5  # down/up blocks of the hourglass
    seq_len: int = 64  # frames per window
    temperature: float = 0.1  # heatmap softmax temperature


@dataclass(frozen=True)
class KeypointDetectorConfig:
    """Keypoint detector on the source image (FOMM `kp_detector_params`)."""

    block_expansion: int = 32  # channels of the first hourglass block
    max_features: int = 1024  # channel cap inside the hourglass
    num_blocks: int = 5  # down/up blocks of the hourglass
    scale_factor: float = 0.25  # the image is downsampled by this before the hourglass
    temperature: float = 0.1  # heatmap softmax temperature


@dataclass(frozen=True)
class DenseMotionConfig:
    """Dense motion network inside the generator (FOMM `dense_motion_params`)."""

    block_expansion: int = 64  # channels of the first hourglass block
    max_features: int = 1024  # channel cap inside the hourglass
    num_blocks: int = 5  # down/up blocks of the hourglass
    scale_factor: float = 0.25  # motion is estimated at this fraction of the image size
    kp_variance: float = 0.01  # variance of the Gaussians drawn around keypoints


@dataclass(frozen=True)
class GeneratorConfig:
    """Occlusion-aware generator (FOMM `generator_params`)."""

    block_expansion: int = 64  # channels after the first block
    max_features: int = 512  # channel cap of the encoder/decoder
    num_down_blocks: int = 2  # encoder down-sampling blocks (and decoder up-sampling blocks)
    num_bottleneck_blocks: int = 6  # residual blocks at the lowest resolution
    estimate_occlusion_map: bool = True  # predict an occlusion mask alongside the motion field
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)  # its motion estimator


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build the four Audio2Head networks."""

    num_kp: int = 10  # keypoints per frame
    num_channels: int = 3  # RGB
    estimate_jacobian: bool = True  # predict a 2x2 Jacobian per keypoint
    pose_predictor: PosePredictorConfig = field(default_factory=PosePredictorConfig)  # audio2pose
    motion_field: MotionFieldConfig = field(default_factory=MotionFieldConfig)  # audio2kp
    kp_detector: KeypointDetectorConfig = field(default_factory=KeypointDetectorConfig)  # kp_detector
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)  # generator

    @classmethod
    def published(cls) -> ModelConfig:
        """The configuration of the released Audio2Head checkpoint."""
        return cls()

    @classmethod
    def reduced(cls) -> ModelConfig:
        """Tiny widths with the published structure, for fast CPU tests (not loadable from the real weights)."""
        return cls(
            pose_predictor=PosePredictorConfig(resnet_width=8, embedding_dim=16, lstm_hidden=16),
            motion_field=MotionFieldConfig(block_expansion=4, max_features=16),
            kp_detector=KeypointDetectorConfig(block_expansion=4, max_features=16),
            generator=GeneratorConfig(
                block_expansion=8, max_features=16,
                dense_motion=DenseMotionConfig(block_expansion=4, max_features=16),
            ),
        )


@dataclass(frozen=True)
class PoseDiscriminatorConfig:
    """Training-only PatchGAN over pose sequences (paper Sec. 3.2): 1-D convolutions along time, not in the
    published checkpoint."""

    pose_dim: int = 6  # input channels: the six pose numbers per frame
    channels: int = 64  # channels of the first convolution; each later one doubles them
    num_layers: int = 3  # strided (stride 2) convolutions before the patch head
    max_channels: int = 512  # channel cap
    kernel_size: int = 4  # temporal kernel of every convolution (PatchGAN's 4)

    @classmethod
    def reduced(cls) -> PoseDiscriminatorConfig:
        """Narrow widths for CPU tests."""
        return cls(channels=8, max_channels=32)


def model_config_from_dict(document: dict) -> ModelConfig:
    """A ModelConfig from the nested dict `dataclasses.asdict` makes (e.g. a weights file's "model_config" metadata
    or a --config JSON file); missing fields keep their defaults, unknown fields raise ValueError naming them."""
    return _dataclass_from_dict(ModelConfig, document, "model config")


def _dataclass_from_dict(cls, document, where: str):
    import dataclasses
    import typing

    if not isinstance(document, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(document).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(document) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(names)}")
    values = {}
    for name, value in document.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _dataclass_from_dict(hint, value, f"{where}.{name}")
        else:
            values[name] = value
    return cls(**values)
