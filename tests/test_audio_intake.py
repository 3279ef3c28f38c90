"""One audio intake: the features and the soundtrack read every source through `a2h_core.audio.intake`, so they
accept, reject and interpret the same inputs in the same way."""
import numpy as np
import pytest
import torch

from a2h_core.audio.decode import to_pcm16
from a2h_core.audio.soundtrack import load_soundtrack
from a2h_core.errors import Audio2HeadError
from a2h_devkit.media import soundtrack_samples

RATE = 16000


def _tone(seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.stack([0.5 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]).astype(np.float32)


def _both(source, sample_rate=None):
    """The features' and the soundtrack's reading of one source."""
    return to_pcm16(source, sample_rate), soundtrack_samples(load_soundtrack(source, sample_rate))


def test_an_audio_batch_is_refused_by_both_paths_alike():
    batch = {"waveform": torch.from_numpy(np.stack([_tone(0.5, 1), _tone(0.5, 1)])), "sample_rate": RATE}
    for read in (to_pcm16, load_soundtrack):
        with pytest.raises(Audio2HeadError, match="batch of 2"):
            read(batch)  # the soundtrack used to take waveform[0] silently


def test_time_first_arrays_are_read_the_same_way_by_both_paths():
    stereo = _tone(0.5, 2)
    pcm_cf, track_cf = _both(stereo, RATE)
    pcm_tf, track_tf = _both(np.ascontiguousarray(stereo.T), RATE)
    np.testing.assert_array_equal(pcm_tf, pcm_cf)  # integer samples: exact on any CPU
    np.testing.assert_array_equal(track_tf, track_cf)  # the same float32 values copied, no arithmetic between them
    assert track_tf.shape == (2, stereo.shape[1])


def test_integer_pcm_is_scaled_as_ffmpeg_does():
    tone = _tone(0.25, 1)
    pcm16 = np.round(tone * 32767).astype(np.int16)
    track = soundtrack_samples(load_soundtrack(pcm16, RATE))
    # ffmpeg's int16 -> float rule, to float32 rounding
    np.testing.assert_allclose(track[0], pcm16[0] / 32768.0, atol=1e-7)


@pytest.mark.parametrize("bad, message", [
    ("missing.wav", "does not exist"),
    ("folder", "is a folder"),
    ("bad.wav", "Cannot decode"),
])
def test_file_errors_are_the_same_for_both_paths(tmp_path, bad, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    for read in (to_pcm16, load_soundtrack):
        with pytest.raises(Audio2HeadError, match=message):
            read(tmp_path / bad)


def test_a_rate_given_with_a_file_is_refused_by_both_paths(tmp_path):
    for read in (to_pcm16, load_soundtrack):
        with pytest.raises(Audio2HeadError, match="sample_rate=8000 was given with a file path"):
            read(tmp_path / "speech.wav", 8000)
