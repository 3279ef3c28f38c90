"""Socket types the Audio2Head nodes pass between stages.

The values travelling on these sockets are plain `a2h_core` objects, so a graph's intermediate results are the
library's own types:

- ``A2H_MODEL``: `nodes.model_loader.LoadedModels` (the four networks plus the device/dtype they run at);
- ``A2H_FEATURES``: `a2h_core.audio.features.AudioFeatures` (41 features per 10 ms, 4 rows per video frame);
- ``A2H_POSE``: `a2h_core.pose.PoseCurve` (frames x 6 head poses with their fps);
- ``A2H_KEYPOINTS``: `a2h_core.modules.keypoints.Keypoints` (source: 1 row; driving: one row per video frame);
- ``A2H_CROP``: `a2h_core.io.image.CropInfo` (where the face crop came from, for paste-back).

Edges to the rest of ComfyUI use core types: IMAGE, AUDIO, MASK and FLOAT fps.
"""
from comfy_api.latest import io

A2HModel = io.Custom("A2H_MODEL")
A2HFeatures = io.Custom("A2H_FEATURES")
A2HPose = io.Custom("A2H_POSE")
A2HKeypoints = io.Custom("A2H_KEYPOINTS")
A2HCrop = io.Custom("A2H_CROP")
