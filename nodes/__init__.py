"""ComfyUI nodes of Audio2Head (V3 schema). Every node is a thin wrapper around `a2h_core`.

Node ids (stable; workflows refer to them), all prefixed "Audio2Head", categories under "Audio2Head/...":

- loaders:  Audio2HeadModelLoader, Audio2HeadPersonalize
- audio:    Audio2HeadAudioFeatures
- pose:     Audio2HeadPosePredictor, Audio2HeadPoseLoad, Audio2HeadPoseSave, Audio2HeadPoseKeyframes,
            Audio2HeadPoseEdit, Audio2HeadPoseRetime, Audio2HeadPoseBlend, Audio2HeadStillHead,
            Audio2HeadPoseFromVideo
- preview:  Audio2HeadPosePlot, Audio2HeadPoseBoxes, Audio2HeadKeypointOverlay
- motion:   Audio2HeadKeypointDetector, Audio2HeadMotionField, Audio2HeadGenerator
- image:    Audio2HeadCrop, Audio2HeadPasteBack
- root:     Audio2HeadAllInOne ("Audio2Head (all-in-one)")

Sockets: A2H_MODEL, A2H_FEATURES, A2H_POSE, A2H_KEYPOINTS, A2H_CROP (see nodes/types.py); edges to core nodes use
IMAGE, AUDIO, MASK and FLOAT fps. Generator / all-in-one frames + fps + the audio plug into core
CreateVideo(images, fps, audio) -> SaveVideo.

Batches: a source IMAGE with B > 1 uses its first image, with a warning (one video per graph run); an AUDIO batch
likewise uses its first clip.

UI payload for the web extension: every node that produces a pose curve (predictor, load, keyframes, edit, retime,
blend, still head) returns, in its UI output, ``{"a2h_pose": [{"fps": float, "frames": int, "yaw": [...],
"pitch": [...], "roll": [...], "x": [...], "y": [...], "z": [...]}]}``: degrees for yaw/pitch/roll, the model's
camera units for x/y/z, one value per pose. The key is `nodes.common.POSE_UI_KEY`.
"""
from comfy_api.latest import ComfyExtension, io

from .all_in_one import Audio2HeadAllInOne
from .audio import Audio2HeadAudioFeatures
from .crop import Audio2HeadCrop, Audio2HeadPasteBack
from .generate import Audio2HeadGenerator
from .keypoints import Audio2HeadKeypointDetector, Audio2HeadKeypointOverlay, Audio2HeadMotionField
from .model_loader import Audio2HeadModelLoader
from .personalize import Audio2HeadPersonalize
from .pose import Audio2HeadPosePredictor
from .pose_tools import (
    Audio2HeadPoseBlend,
    Audio2HeadPoseEdit,
    Audio2HeadPoseKeyframes,
    Audio2HeadPoseLoad,
    Audio2HeadPoseRetime,
    Audio2HeadPoseSave,
    Audio2HeadStillHead,
)
from .pose_video import Audio2HeadPoseFromVideo
from .render import Audio2HeadPoseBoxes, Audio2HeadPosePlot

NODE_CLASSES = [
    Audio2HeadModelLoader,
    Audio2HeadAudioFeatures,
    Audio2HeadPosePredictor,
    Audio2HeadPoseLoad,
    Audio2HeadPoseSave,
    Audio2HeadPoseKeyframes,
    Audio2HeadPoseEdit,
    Audio2HeadPoseRetime,
    Audio2HeadPoseBlend,
    Audio2HeadStillHead,
    Audio2HeadPoseFromVideo,
    Audio2HeadPosePlot,
    Audio2HeadPoseBoxes,
    Audio2HeadKeypointDetector,
    Audio2HeadMotionField,
    Audio2HeadGenerator,
    Audio2HeadCrop,
    Audio2HeadPasteBack,
    Audio2HeadKeypointOverlay,
    Audio2HeadAllInOne,
    Audio2HeadPersonalize,
]


class Audio2HeadExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODE_CLASSES)


async def comfy_entrypoint() -> Audio2HeadExtension:
    """ComfyUI's V3 entry point (re-exported by the pack's root __init__.py)."""
    return Audio2HeadExtension()
