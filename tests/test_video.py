"""MP4 writing: exactly 25 fps, every frame, sound trimmed to the video, even size, atomic write."""
import os

import numpy as np
import pytest

from a2h_core.audio.soundtrack import load_soundtrack
from a2h_core.errors import Audio2HeadError
from a2h_core.io.video import VideoWriter
from a2h_devkit.media import read_video_info, soundtrack_samples


def _tone(seconds, rate, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    return np.repeat((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], channels, axis=0)


def _frames(count, height=64, width=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (22050, 1)])
def test_mp4_properties(tmp_path, rate, channels):
    out = tmp_path / "clip.mp4"
    with VideoWriter(out, 48, 64, soundtrack=load_soundtrack(_tone(3.0, rate, channels), rate)) as writer:
        for start in range(0, 37, 8):  # uneven batches, as the pipeline streams them
            writer.write(_frames(min(8, 37 - start), seed=start))
    info = read_video_info(out)
    assert info["fps"] == 25 and info["frames"] == 37
    assert (info["width"], info["height"]) == (48, 64)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert info["sample_rate"] == rate
    assert info["video_seconds"] == pytest.approx(37 / 25)
    # 3 s of sound trimmed to the 1.48 s video (AAC works in 1024-sample packets).
    assert info["audio_seconds"] == pytest.approx(37 / 25, abs=1024 / rate)
    assert os.listdir(tmp_path) == ["clip.mp4"]


def test_frames_survive_encoding(tmp_path):
    import av

    frames = np.zeros((5, 32, 32, 3), np.uint8)
    frames[:, :, :16] = 255
    out = tmp_path / "plain.mp4"
    with VideoWriter(out, 32, 32, crf=0) as writer:
        writer.write(frames)
    with av.open(str(out)) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(decoded) == 5
    assert np.abs(decoded[2].astype(int) - frames[2]).mean() < 8
    assert read_video_info(out)["audio_codec"] is None


def test_interruption_leaves_no_file(tmp_path):
    out = tmp_path / "video.mp4"
    with pytest.raises(KeyboardInterrupt), VideoWriter(out, 32, 32) as writer:
        writer.write(_frames(4, 32, 32))
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_writer_errors(tmp_path):
    with pytest.raises(Audio2HeadError, match="even frame size"):
        VideoWriter(tmp_path / "a.mp4", 33, 32)
    with pytest.raises(Audio2HeadError, match=r".mp4"):
        VideoWriter(tmp_path / "a.avi", 32, 32)
    with pytest.raises(Audio2HeadError, match="no frames"), VideoWriter(tmp_path / "a.mp4", 32, 32):
        pass
    assert os.listdir(tmp_path) == []


def test_soundtrack_sources(tmp_path):
    import torch

    wave = _tone(0.5, 22050, 2)
    track = load_soundtrack({"waveform": torch.from_numpy(wave)[None], "sample_rate": 22050})
    assert track.sample_rate == 22050 and track.channels == 2
    assert soundtrack_samples(track).shape == (2, 11025)
    pcm = (wave[0] * 32767).astype(np.int16)
    from_int = soundtrack_samples(load_soundtrack(pcm, sample_rate=22050))
    np.testing.assert_allclose(from_int[0], wave[0], atol=1e-4)
    assert soundtrack_samples(load_soundtrack(np.zeros((6, 100), np.float32), sample_rate=48000)).shape == (1, 100)
    odd_rate = load_soundtrack(np.zeros(1000, np.float32), sample_rate=12345)
    assert odd_rate.sample_rate == 48000 and abs(soundtrack_samples(odd_rate).shape[1] - 3888) <= 1
    with pytest.raises(Audio2HeadError, match="sample rate"):
        load_soundtrack(wave)
    with pytest.raises(Audio2HeadError, match="does not exist"):
        load_soundtrack(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(Audio2HeadError, match="Cannot decode"):
        load_soundtrack(tmp_path / "bad.wav")


def test_soundtrack_round_trip_through_a_file(tmp_path):
    out = tmp_path / "tone.mp4"
    with VideoWriter(out, 32, 32, soundtrack=load_soundtrack(_tone(1.0, 16000), 16000)) as writer:
        writer.write(_frames(25, 32, 32))
    track = load_soundtrack(out)
    assert track.sample_rate == 16000 and track.channels == 1
    wave = soundtrack_samples(track)
    assert abs(wave.shape[1] - 16000) <= 2048 and 0.2 < np.abs(wave).max() < 0.4
