"""Audio2Head (all-in-one): portrait + speech -> talking-head frames in one node, for a first try."""
from __future__ import annotations

from comfy_api.latest import io

from a2h_core.audio.features import extract_features
from a2h_core.config import FPS
from a2h_core.errors import Audio2HeadError
from a2h_core.inference.pipeline import PipelineConfig, checked_config, generate
from a2h_core.io.image import prepare_source_image
from a2h_core.io.mark import checked_watermark
from a2h_core.pose import PoseCurve

from . import comfy
from .common import BATCH_POLICY, CATEGORY, blame, pose_ui, single_audio, single_image
from .crop import face_detector_inputs
from .generate import BATCH_SIZE_TOOLTIP
from .model_loader import device_inputs, load_cached, validate_weights, weights_input
from .types import A2HPose
from .video import FRAMES_ALL, FrameKeeper, file_video, frames_input, temp_video_path, video_output


class Audio2HeadAllInOne(io.ComfyNode):
    """Every stage in one node: features, head poses, motion field, keypoints and generator."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadAllInOne",
            display_name="Audio2Head (all-in-one)",
            category=CATEGORY,
            description="Animates a portrait with a speech recording: natural head motion is predicted from the "
                        "audio (or taken from an optional pose curve). Connect the video output to Save Video "
                        "(streamed to disk: memory stays flat for long clips), or frames, fps and audio to Create "
                        "Video to post-process the frames.",
            inputs=[
                io.Image.Input("image", tooltip=f"Portrait of any size: the face is found and framed as the model "
                                                f"was trained (crop auto). {BATCH_POLICY}"),
                io.Audio.Input("audio", tooltip="Speech recording (any sample rate and channel count). A batch of "
                                                "clips uses the first one."),
                weights_input(),
                *device_inputs(),
                io.Int.Input("batch_size", default=8, min=1, max=256, tooltip=BATCH_SIZE_TOOLTIP),
                io.Combo.Input("crop", options=["auto", "none"], default="auto",
                               tooltip="auto: find the face and animate the model's square crop around it; none: "
                                       "resize the whole image to 256x256 (the original's behaviour, for pictures "
                                       "already framed like its demo images)."),
                io.Boolean.Input("paste_back", default=True,
                                 tooltip="With crop auto: blend the animated face back into the full picture (frames "
                                         "at the picture's size, even sides); off: the 256x256 crop frames."),
                *face_detector_inputs(),
                A2HPose.Input("pose", optional=True,
                              tooltip="Optional head-pose curve to use instead of the predicted one (from the pose "
                                      "tools). Its last pose is held if it is shorter than the audio."),
                io.String.Input("watermark", default="", optional=True,
                                tooltip="Optional visible mark: this text is drawn in the bottom-left corner of "
                                        "every frame (e.g. 'AI-generated'). Empty: no visible mark."),
                frames_input(),
            ],
            outputs=[
                io.Image.Output(display_name="frames", tooltip="Video frames at 25 fps: the full picture with the face "
                                                               "pasted back, or [N, 256, 256, 3] without paste-back."),
                io.Float.Output(display_name="fps", tooltip="Frame rate (25)."),
                io.Audio.Output(display_name="audio", tooltip="The input audio, for Create Video."),
                A2HPose.Output(display_name="pose", tooltip="The head-pose curve that drove the video."),
                video_output(),
            ],
        )

    @classmethod
    def validate_inputs(cls, weights):
        return validate_weights(weights)

    @classmethod
    def execute(cls, image, audio, weights, device, dtype, batch_size, crop, paste_back, detector,
                pose=None, watermark="", frames_output=FRAMES_ALL) -> io.NodeOutput:
        # Each input is checked on its own first, so that a message names the input it is about.
        image = single_image(image)
        with blame("image"):
            prepare_source_image(image)
        audio = single_audio(audio)
        with blame("audio"):
            features = extract_features(audio, progress=comfy.Progress(1))
        if pose is not None and not isinstance(pose, PoseCurve):
            raise Audio2HeadError(f"input 'pose': expected a head-pose curve, got a {type(pose).__name__}")
        with blame("watermark"):
            watermark = checked_watermark(watermark or None)
        model = load_cached(weights, device, dtype)
        with blame("batch_size"):
            config = checked_config(PipelineConfig(device=model.load_device, dtype=model.dtype,
                                                   batch_size=batch_size, crop=crop, paste_back=paste_back,
                                                   face_detector=detector, face_models_dir=comfy.face_models_dir(),
                                                   watermark=watermark))
        progress = comfy.Progress(1)  # generate() reports the real frame count with its first update
        keeper = FrameKeeper(features.num_frames, frames_output)
        with model.on_device() as models:  # the MP4 streams to disk; only what frames_output asks for is kept
            result = generate(image, audio, models, config, pose_curve=pose, out_path=temp_video_path(),
                              progress=progress, features=features, on_frames=keeper,
                              check_cancel=comfy.check_interrupted)
        return io.NodeOutput(keeper.image(), float(FPS), audio, result.poses, file_video(result.out_path),
                             ui=pose_ui(result.poses))
