"""Head-pose predictor node: model + source image + audio features -> a predicted head-pose curve."""
from __future__ import annotations

from comfy_api.latest import io

from a2h_core.io.image import prepare_source_image

from . import comfy
from .common import BATCH_POLICY, CATEGORY, blame, pose_ui, single_image
from .types import A2HFeatures, A2HModel, A2HPose


def model_input():
    return A2HModel.Input("model", tooltip="Networks from Audio2Head Model Loader.")


def image_input(what: str = "Portrait to animate"):
    return io.Image.Input("image", tooltip=f"{what}; the whole image is resized to the model's image size (256x256 "
                                           f"for the published model; use Audio2Head Crop for a face in a larger "
                                           f"picture). {BATCH_POLICY}")


def features_input():
    return A2HFeatures.Input("features", tooltip="Audio features from Audio2Head Audio Features.")


def source_tensor(image, model):
    """The model's source tensor [1, 3, S, S] from a ComfyUI IMAGE (first of the batch), S the model's image size
    (256 for the published model)."""
    with blame("image"):
        source, _ = prepare_source_image(single_image(image), size=model.models.config.image_size)
    return source


class Audio2HeadPosePredictor(io.ComfyNode):
    """Predicts natural head motion for the speech: one pose per video frame plus the image's own pose first."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadPosePredictor",
            display_name="Audio2Head Pose Predictor",
            category=f"{CATEGORY}/pose",
            description="Predicts a head-pose curve (rotation + translation per frame) from the audio and the "
                        "portrait. Holds frames + 1 poses: pose 0 is estimated from the image.",
            inputs=[model_input(), image_input(), features_input()],
            outputs=[A2HPose.Output(display_name="pose", tooltip="Predicted head-pose curve (25 fps).")],
        )

    @classmethod
    def execute(cls, model, image, features) -> io.NodeOutput:
        source = source_tensor(image, model)
        with model.wrapper() as wrapper, blame("features"):
            curve = wrapper.predict_poses(source, features, progress=comfy.Progress(1))
        return io.NodeOutput(curve, ui=pose_ui(curve))
