"""The VIDEO output of the all-in-one and Generator nodes (nodes/video.py), called directly without ComfyUI.

The video is an MP4 streamed into the temp folder (AUDIO2HEAD_TEMP_DIR here, conftest's node_temp_folder) and returned
as a file-backed VIDEO; tests/test_comfyui_video.py checks that core Save Video copies it, in a real server.
Models are random reduced-width networks (conftest's `reduced_weights`).
"""
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from a2h_core.config import FPS
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.io.mark import SYNTHETIC_TAG
from nodes import video as node_video


@pytest.fixture
def temp_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO2HEAD_TEMP_DIR", str(tmp_path))
    return tmp_path


def read_mp4(video) -> dict:
    """What the MP4 behind a VIDEO holds: decoded frames, fps, sound length and channels, container tags."""
    path = Path(video.get_stream_source())
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        audio = container.streams.audio[0] if container.streams.audio else None
        return {"path": path, "frames": frames, "fps": float(stream.average_rate),
                "audio_seconds": float(audio.duration * audio.time_base) if audio is not None else None,
                "channels": audio.channels if audio is not None else None, "tags": dict(container.metadata)}


def test_all_in_one_video_output_is_the_frames_with_the_sound(weights, run_node, comfy_image, comfy_audio,
                                                               temp_folder):
    image, audio = comfy_image(height=256, width=256), comfy_audio(seconds=0.9, rate=22050, channels=1)
    inputs = {"image": image, "audio": audio, "weights": weights, "device": "cpu", "dtype": "fp32", "batch_size": 4,
              "crop": "none", "paste_back": True, "detector": "auto"}
    frames, fps, _, pose, video = run_node("Audio2HeadAllInOne", **inputs).args
    assert fps == FPS and frames.shape == (len(pose.values) - 1, 256, 256, 3)
    mp4 = read_mp4(video)
    assert mp4["path"].parent == temp_folder and mp4["path"].suffix == ".mp4"
    assert video.get_dimensions() == (256, 256)
    assert mp4["fps"] == FPS and len(mp4["frames"]) == len(frames)
    # H.264 at crf 18 is lossy: the decoded video follows the IMAGE output closely, not exactly.
    error = np.abs(mp4["frames"].astype(np.float32) / 255 - frames.numpy()).mean()
    assert error < 0.03, error
    # The sound is the input's (mono stays mono), trimmed to the frames (AAC frames are 1024 samples long).
    assert mp4["channels"] == 1 and abs(mp4["audio_seconds"] - len(frames) / FPS) < 0.05
    assert mp4["tags"]["comment"] == SYNTHETIC_TAG

    first, _, _, _, first_video = run_node("Audio2HeadAllInOne", **inputs, frames_output="first only").args
    assert first.shape == (1, 256, 256, 3)
    assert torch.equal(first[0], frames[0])  # the same cached networks on the same input
    assert len(read_mp4(first_video)["frames"]) == len(frames)
    assert sorted(temp_folder.iterdir()) == sorted([mp4["path"], Path(first_video.get_stream_source())])


def test_generator_video_output_with_and_without_audio(weights, run_node, comfy_image, comfy_audio, temp_folder):
    model = run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="fp32")[0]
    image, audio = comfy_image(), comfy_audio(seconds=0.7)
    features = run_node("Audio2HeadAudioFeatures", audio=audio)[0]
    pose = run_node("Audio2HeadStillHead", num_frames=0, features=features)[0]
    kp_source = run_node("Audio2HeadKeypointDetector", model=model, image=image)[0]
    kp_driving = run_node("Audio2HeadMotionField", model=model, image=image, features=features, pose=pose)[0]
    keypoints = {"model": model, "image": image, "source_keypoints": kp_source, "driving_keypoints": kp_driving,
                 "batch_size": 3}
    frames, _, video = run_node("Audio2HeadGenerator", **keypoints, audio=audio).args
    mp4 = read_mp4(video)
    assert len(mp4["frames"]) == len(frames) == len(kp_driving)
    assert mp4["channels"] == 2 and abs(mp4["audio_seconds"] - len(frames) / FPS) < 0.05
    assert '"node": "Audio2HeadGenerator"' in mp4["tags"]["description"]
    silent = read_mp4(run_node("Audio2HeadGenerator", **keypoints, frames_output="first only")[2])
    assert silent["audio_seconds"] is None and len(silent["frames"]) == len(frames)
    with pytest.raises(Audio2HeadError, match=r"^input 'audio'"):
        run_node("Audio2HeadGenerator", **keypoints, audio={"waveform": "speech.wav", "sample_rate": 16000})
    assert len(list(temp_folder.iterdir())) == 2  # the refused run wrote nothing


def test_large_frames_output_warns_and_points_to_the_video(monkeypatch):
    monkeypatch.setattr(node_video, "FRAMES_WARNING_BYTES", 10 * 256 * 256 * 3 * 4)
    batch = np.zeros((4, 256, 256, 3), dtype=np.uint8)
    node_video.FrameKeeper(10, "all")(batch)  # exactly at the limit: quiet
    with pytest.warns(A2HWarning, match=r"11 frames of 256x256.*frames_output.*first only.*Save Video"):
        node_video.FrameKeeper(11, "all")(batch)
    with pytest.raises(Audio2HeadError, match=r"input 'frames_output': 'every'.*'all' or 'first only'"):
        node_video.FrameKeeper(11, "every")
    keeper = node_video.FrameKeeper(11, "first only")  # one frame kept: never large
    keeper(batch + 7)
    keeper(batch)
    assert keeper.image().shape == (1, 256, 256, 3) and float(keeper.image().max()) == pytest.approx(7 / 255)


def test_cancelled_generation_leaves_no_video(weights, run_node, comfy_image, comfy_audio, temp_folder,
                                              monkeypatch):
    """Cancel (an exception from the progress callback) mid-clip: no MP4, complete or partial, stays behind."""
    class Interrupted(Exception):
        pass

    def cancel(self, done, total=None):
        if done:
            raise Interrupted()

    monkeypatch.setattr("nodes.comfy.Progress.__call__", cancel)
    with pytest.raises(Interrupted):
        run_node("Audio2HeadAllInOne", image=comfy_image(), audio=comfy_audio(seconds=1.0), weights=weights,
                 device="cpu", dtype="fp32", batch_size=2, crop="none", paste_back=True, detector="auto")
    assert list(temp_folder.iterdir()) == []
