"""SyncNet's lip-sync scores (LSE-D / LSE-C). SyncNet's weights cannot be downloaded here: the network is checked on
RANDOM weights saved as the original `syncnet_v2.model` would be (`a2h_devkit.metric_weights`: an old torch's state
dict, no BatchNorm `num_batches_tracked`), the reduction by hand, the windowing and offset search with a toy
embedding whose correct answer is known, and SyncNet's MFCC against python_speech_features."""
import numpy as np
import pytest
import python_speech_features
import torch

from a2h_core.audio.decode import normalise_peak
from a2h_core.audio.features import extract_features
from a2h_core.errors import Audio2HeadError
from a2h_core.training.lip_sync import (
    INT16_FULL_SCALE,
    MAX_OFFSET,
    SYNCNET_FILE,
    LipSyncMetric,
    lip_sync_score,
    load_syncnet,
    sync_distances,
    syncnet_mfcc,
)
from a2h_devkit.metric_weights import random_syncnet_file
from a2h_devkit.speech import speech_like


def test_random_weights_in_the_original_layout_load_strictly(tmp_path):
    path = random_syncnet_file(tmp_path / SYNCNET_FILE)
    model = load_syncnet(path)
    saved = torch.load(path, weights_only=True)
    assert torch.equal(model.netcnnlip[0].weight, saved["netcnnlip.0.weight"])
    assert not model.training
    with torch.no_grad():
        lips = model.lip_embedding(torch.rand(2, 3, 5, 224, 224) * 255)
        audio = model.audio_embedding(torch.randn(2, 1, 13, 20))
    assert lips.shape == audio.shape == (2, 1024) and torch.isfinite(lips).all()
    broken = tmp_path / "broken.model"
    torch.save({k: v for k, v in saved.items() if not k.startswith("netfcaud")}, broken)
    with pytest.raises(Audio2HeadError, match="does not fit SyncNet"):
        load_syncnet(broken)
    with pytest.raises(Audio2HeadError, match=r"syncnet_v2\.model"):
        load_syncnet(tmp_path / "absent.model")


def test_distances_and_scores_by_hand():
    rng = np.random.default_rng(0)
    lip, audio = torch.from_numpy(rng.normal(size=(6, 4))), torch.from_numpy(rng.normal(size=(6, 4)))
    distances = sync_distances(lip, audio, max_offset=2)
    for i in range(6):
        for j in range(5):
            k = i + j - 2
            other = audio[k] if 0 <= k < 6 else torch.zeros(4)
            assert distances[i, j] == pytest.approx(float(torch.linalg.norm(lip[i] - other + 1e-6)), abs=1e-12)
    # Mean over frames per offset: [3, 1, 2, 5, 4]; minimum 1 at index 1 (offset 2 - 1 = 1), median 3.
    given = torch.tensor([[2.0, 1.0, 2.0, 6.0, 4.0], [4.0, 1.0, 2.0, 4.0, 4.0]])
    score = lip_sync_score(given)
    assert (score.lse_d, score.lse_c, score.offset) == (1.0, 2.0, 1)


class ToyEmbedding(torch.nn.Module):
    """Lips: the brightness of each of the 5 frames; audio: the mean of MFCC c1 over each frame's 4 steps. In sync,
    both give the same vector."""

    def lip_embedding(self, frames):
        return frames.mean(dim=(1, 3, 4))

    def audio_embedding(self, mfcc):
        return mfcc[:, 0, 1].reshape(len(mfcc), 5, 4).mean(2)


@pytest.mark.parametrize("shift", [3, 0, -2])
def test_the_offset_search_finds_a_known_shift(shift):
    """Frame t's brightness is s[t]; the audio carries s[t + shift] at frame t: the video lags the audio by `shift`
    frames, and the distance curve's minimum must land there. There every window whose partner exists matches
    exactly; the |shift| windows whose partner falls past the audio's end meet the zero padding instead."""
    frames_count = 40
    rng = np.random.default_rng(1)
    signal = rng.uniform(30, 220, frames_count + 10)
    brightness = np.round(signal[5:5 + frames_count])
    frames = np.broadcast_to(brightness[:, None, None, None], (frames_count, 32, 32, 3)).astype(np.uint8)
    features = np.zeros((frames_count * 4, 41))
    features[:, 1] = np.repeat(np.round(signal[5 + shift:5 + shift + frames_count]), 4)
    score = LipSyncMetric(ToyEmbedding(), torch.device("cpu"))(frames, features)
    assert score.offset == shift
    windows = frames_count - 5
    unmatched = [np.linalg.norm(brightness[i:i + 5]) for i in range(windows) if not 0 <= i - shift < windows]
    assert len(unmatched) == abs(shift)
    assert score.lse_d == pytest.approx(sum(unmatched) / windows, abs=1e-3)
    assert score.lse_c > 10


def test_syncnet_mfcc_is_python_speech_features_at_full_scale():
    """SyncNet's MFCC of the peak-normalised audio at 16-bit full scale, taken from the stored 41-column features."""
    audio = speech_like(seconds=0.8)[0]
    pcm = np.round(audio * 20000).astype(np.int16)
    features = extract_features(pcm, 16000)
    ours = syncnet_mfcc(features.values)
    reference = python_speech_features.mfcc(normalise_peak(pcm.astype(np.float64)) * INT16_FULL_SCALE, 16000).T
    rows = ours.shape[1]
    assert ours.shape[0] == 13 and rows >= reference.shape[1] - 4
    assert np.abs(ours - reference[:, :rows]).max() < 1e-6 * np.abs(reference).max()


def test_lip_sync_on_a_synthetic_clip_with_random_syncnet(tmp_path):
    model = load_syncnet(random_syncnet_file(tmp_path / SYNCNET_FILE))
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (9, 64, 64, 3), dtype=np.uint8)
    features = extract_features(np.round(speech_like(seconds=9 / 25 + 0.05)[0] * 20000).astype(np.int16), 16000)
    metric = LipSyncMetric(model, torch.device("cpu"))
    assert metric.windows(frames, features.values) == 4
    score = metric(frames, features.values)
    assert np.isfinite(score.lse_d) and score.lse_d > 0 and score.lse_c >= 0
    assert -MAX_OFFSET <= score.offset <= MAX_OFFSET
    with pytest.raises(Audio2HeadError, match="at least 6 frames"):
        metric(frames[:5], features.values)
