"""Hyper-parameters of the Audio2Head networks and the constants the original inference code uses.

`ModelConfig.published()` matches the released checkpoint (the original's `config/vox-256.yaml` and
`config/parameters.yaml`); `ModelConfig.reduced()` keeps every structural choice but shrinks the widths so that
tests can run forward passes on a small CPU. `config.at_image_size(512)` is the same model for 512 x 512 images
(no published weights exist at 512: train them with `python -m a2h_core train`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

FPS = 25  # video frame rate the model was trained at
FEATURE_ROWS_PER_FRAME = 4  # 10 ms audio feature rows per 40 ms video frame
NUM_AUDIO_FEATURES = 41  # 13 MFCC + 26 log filter bank + F0 + voiced flag
IMAGE_SIZE = 256  # side of the square source image and pose-box images of the published model (ModelConfig default)
MOTION_WORKING_SIZE = 64  # side at which the keypoint detector, the dense motion and the motion field work, at any
#                           image size (the motion field's audio embedding is 64 x 64 by construction)
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

    image_size: int = IMAGE_SIZE  # side of the square images the networks see (source, frames, pose boxes); 256 is
    #                               the published checkpoint's; other sizes come from `at_image_size`
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

    def at_image_size(self, size: int) -> ModelConfig:
        """This configuration for `size` x `size` images (a multiple of 64: 128, 256, 512, ...), as FOMM-family
        higher-resolution configurations do: the keypoint detector's and the dense motion's scale factors become
        64 / size, so both keep working at 64 x 64 (the motion field generator derives its input scale from
        `image_size` likewise); the generator's encoder and decoder run at the full size. Widths are unchanged, so
        the 256 weights' shapes are those of any size except the anti-aliasing kernels (fixed buffers)."""
        size = int(size)
        if size < MOTION_WORKING_SIZE or size % MOTION_WORKING_SIZE:
            raise ValueError(f"image size {size}: use a multiple of {MOTION_WORKING_SIZE} (128, 256, 512, ...)")
        scale = MOTION_WORKING_SIZE / size
        generator = replace(self.generator, dense_motion=replace(self.generator.dense_motion, scale_factor=scale))
        return replace(self, image_size=size, kp_detector=replace(self.kp_detector, scale_factor=scale),
                       generator=generator)

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


VGG_LAYER_INDEX = {  # torchvision's `vgg.features` index of each named ReLU output
    "vgg19": {"relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
              "relu3_4": 17, "relu4_1": 20, "relu4_2": 22, "relu4_3": 24, "relu4_4": 26, "relu5_1": 29,
              "relu5_2": 31, "relu5_3": 33, "relu5_4": 35},
    "vgg16": {"relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
              "relu4_1": 18, "relu4_2": 20, "relu4_3": 22, "relu5_1": 25, "relu5_2": 27, "relu5_3": 29},
}
VGG_CHANNELS = {  # torchvision's VGG configurations "E" (VGG-19) and "D" (VGG-16); 0 marks a 2x2 max pooling
    "vgg19": (64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0),
    "vgg16": (64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0),
}


@dataclass(frozen=True)
class PerceptualConfig:
    """Training-only VGG feature extractor of the perceptual losses (FOMM's VGG-19 for N_D/N_I; the paper's VGG-16,
    eq. 6, for N_M's second stage). Not in the published checkpoint: its weights are ImageNet's (torchvision's)."""

    arch: str = "vgg19"  # "vgg19" or "vgg16"
    layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # features compared (FOMM's)
    width_divisor: int = 1  # channels divided by this: 1 is the pretrained network; more is for CPU tests only
    #                         (random weights, nothing to download)

    def check(self) -> None:
        if self.arch not in VGG_LAYER_INDEX:
            raise ValueError(f"perceptual network {self.arch!r}: use one of {sorted(VGG_LAYER_INDEX)}")
        unknown = [name for name in self.layers if name not in VGG_LAYER_INDEX[self.arch]]
        if unknown or not self.layers:
            raise ValueError(f"{self.arch} has no layer(s) {unknown or '(none given)'}; it has "
                             f"{', '.join(VGG_LAYER_INDEX[self.arch])}")
        if self.width_divisor < 1 or 64 % self.width_divisor:
            raise ValueError(f"width_divisor {self.width_divisor}: use a divisor of 64")


@dataclass(frozen=True)
class ImageDiscriminatorConfig:
    """Training-only PatchGAN on frames for the optional GAN terms of N_D/N_I training (FOMM's discriminator_params:
    off in vox-256, where the generator's GAN weight is 0)."""

    block_expansion: int = 32  # channels of the first block; each later one doubles them
    max_features: int = 512  # channel cap
    num_blocks: int = 4  # down blocks (each halves the size but the last)
    spectral_norm: bool = True  # spectral normalisation of every convolution (FOMM's sn: True)

    @classmethod
    def reduced(cls) -> ImageDiscriminatorConfig:
        """Narrow widths for CPU tests."""
        return cls(block_expansion=4, max_features=16)


def model_config_from_dict(document: dict) -> ModelConfig:
    """A ModelConfig from the nested dict `dataclasses.asdict` makes (e.g. a weights file's "model_config" metadata
    or a --config JSON file); missing fields keep their defaults, unknown fields raise ValueError naming them."""
    return config_from_dict(ModelConfig, document, "model config")


def config_from_dict(cls, document, where: str):
    """A (nested) config dataclass `cls` from a JSON dict: missing fields keep their defaults, lists become tuples
    (JSON has no tuples), unknown fields raise ValueError naming them and `where`."""
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
            value = config_from_dict(hint, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(**values)
