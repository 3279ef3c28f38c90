"""Faces in real photos and videos: detection (YuNet, MTCNN; pure torch), the model's square crop around a face,
and head poses fitted from landmarks.

- `detect_faces(image)` -> every face (box, five landmarks, score), largest first;
- `face_crop(image, ...)` -> the square crop framed like the model's training data (`framing`);
- `load_face_detector("auto" | "yunet" | "mtcnn" | path)` -> a reusable detector;
- `pose_from_video(frames, fps)` -> the clip's head-pose `PoseCurve` (`fit_video_pose` gives the details).
"""
from a2h_core.face.detectors import DETECTORS, LANDMARK_NAMES, Face, FaceDetector, detect_faces, load_face_detector
from a2h_core.face.framing import DEFAULT_FRAMING, FaceCrop, Framing, face_crop, framing_box
from a2h_core.face.video_pose import VideoPose, fit_video_pose, pose_from_video

__all__ = [
    "DEFAULT_FRAMING",
    "DETECTORS",
    "LANDMARK_NAMES",
    "Face",
    "FaceCrop",
    "FaceDetector",
    "Framing",
    "VideoPose",
    "detect_faces",
    "face_crop",
    "fit_video_pose",
    "framing_box",
    "load_face_detector",
    "pose_from_video",
]
