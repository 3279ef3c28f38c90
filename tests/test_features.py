"""The 41 audio features (a2h_core.audio.features) against the original's recipe and on edge cases."""
import argparse
import itertools
import warnings

import numpy as np
import pytest
import python_speech_features
from scipy.io import wavfile

from a2h_core.audio import features as features_module
from a2h_core.audio.decode import to_pcm16
from a2h_core.audio.features import MIN_SAMPLES, AudioFeatures, extract_features, interpolate_unvoiced, mel_features
from a2h_core.cli import features as features_command
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_devkit.speech import ESPEAK_CLIPS, espeak

F0_COLUMN, VOICED_COLUMN = 39, 40


def tone(rate, seconds, frequency=150.0, kind="sine", channels=1, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * frequency * t
    if kind == "sawtooth":
        wave = 2 * ((frequency * t) % 1.0) - 1
    elif kind == "sweep":  # 100 Hz -> 300 Hz
        wave = np.sin(2 * np.pi * (100 * t + 100 * t ** 2 / seconds))
    else:
        wave = np.sin(phase)
    # A little noise: Harvest calls a mathematically pure sine unvoiced (pyworld does too).
    wave = wave + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return np.stack([amplitude * (0.9 + 0.1 * c) * wave for c in range(channels)])


def reference_inter_pitch(f0, voiced):
    """Straightforward reading of the original's inter_pitch: walk the frames, fill each unvoiced gap."""
    f0 = f0.copy()
    voiced_frames = [i for i in range(len(f0)) if voiced[i]]
    if not voiced_frames:
        return f0
    first, last = voiced_frames[0], voiced_frames[-1]
    f0[:first] = f0[first]
    f0[last + 1:] = f0[last]
    for left, right in itertools.pairwise(voiced_frames):
        if right - left > 1:
            x = np.linspace(0, 1, right - left + 1)
            f0[left + 1:right] = np.interp(x, [0, 1], [f0[left], f0[right]])[1:-1]
    return f0


def test_interpolation_matches_the_reference_on_random_patterns():
    rng = np.random.default_rng(0)
    one_voiced = [np.arange(50) == index for index in (0, 20, 49)]
    patterns = [np.zeros(50, bool), np.ones(50, bool), np.zeros(1, bool), np.ones(1, bool), *one_voiced]
    patterns += [rng.random(int(rng.integers(2, 300))) < p for p in rng.random(300)]
    for voiced in patterns:
        f0 = np.where(voiced, rng.uniform(80, 400, voiced.size), 0.0)
        np.testing.assert_array_equal(interpolate_unvoiced(f0, voiced), reference_inter_pitch(f0, voiced))


def test_interpolation_fills_linearly_and_holds_edges():
    f0 = np.array([0, 0, 100, 0, 0, 0, 200, 0, 0.0])
    result = interpolate_unvoiced(f0, f0 > 0)
    np.testing.assert_allclose(result, [100, 100, 100, 125, 150, 175, 200, 200, 200])
    assert f0[3] == 0  # the input is not modified
    assert not interpolate_unvoiced(np.zeros(5), np.zeros(5, bool)).any()


@pytest.mark.parametrize("block_rows", [3, 2048])
def test_mel_features_are_python_speech_features_exactly(monkeypatch, block_rows):
    monkeypatch.setattr(features_module, "_MEL_BLOCK_ROWS", block_rows)  # 3: many block edges
    rng = np.random.default_rng(2)
    for length in (100, 400, 401, 560, 721, 880, 881, 16037):
        signal = rng.standard_normal(length)
        signal[: length // 3] = 0  # digital silence inside: the eps floor
        mfcc, filterbank = mel_features(signal)
        # Equal up to the last bits a matrix product may round differently with another number of rows.
        np.testing.assert_allclose(mfcc, python_speech_features.mfcc(signal, 16000), rtol=0, atol=1e-9)
        np.testing.assert_allclose(filterbank, python_speech_features.logfbank(signal, 16000), rtol=0, atol=1e-9)


def original_recipe(path):
    """The original's get_audio_feature_from_audio on a 16 kHz int16 wav file, with pyworld."""
    pyworld = pytest.importorskip("pyworld", reason="pyworld not installed: no reference for F0")
    sample_rate, audio = wavfile.read(path)
    audio = audio - np.mean(audio)
    audio = audio / np.max(np.abs(audio))
    mfcc = python_speech_features.mfcc(audio, sample_rate)
    filterbank = python_speech_features.logfbank(audio, sample_rate)
    f0, _ = pyworld.harvest(audio, sample_rate, frame_period=10)
    voiced = f0 != 0
    f0 = reference_inter_pitch(f0, voiced)
    rows = min(len(mfcc), len(filterbank), len(f0))
    return np.concatenate([mfcc[:rows], filterbank[:rows], f0[:rows, None], voiced[:rows, None]], axis=1)


def assert_matches_original(ours, reference):
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours[:, :F0_COLUMN], reference[:, :F0_COLUMN], rtol=0, atol=1e-6)
    agreement = np.mean(ours[:, VOICED_COLUMN] == reference[:, VOICED_COLUMN])
    assert agreement >= 0.995, f"voicing agrees on only {agreement:.2%} of frames"
    cents = 1200 * np.abs(np.log2(ours[:, F0_COLUMN] / reference[:, F0_COLUMN]))
    assert np.median(cents) <= 1.0, f"median F0 error {np.median(cents):.3g} cents"


@pytest.mark.parametrize("kind", ["speech", "sine", "sawtooth", "sweep", "noise"])
def test_whole_chain_equals_the_originals_recipe_on_16k_wav(tmp_path, kind):
    rng = np.random.default_rng(1)
    if kind == "speech":  # vowel-like: 110 Hz glottal pulses through a formant, with pauses
        t = np.arange(24000) / 16000
        pulses = (np.sin(2 * np.pi * 110 * t) > 0.95).astype(float) * (np.sin(2 * np.pi * 2 * t) > -0.3)
        signal = np.convolve(pulses, np.exp(-np.arange(200) / 30) * np.sin(2 * np.pi * 700 * np.arange(200) / 16000))
        signal = signal[:t.size] + 0.002 * rng.standard_normal(t.size)
    elif kind == "noise":
        signal = 0.3 * rng.standard_normal(24000)
    else:
        signal = tone(16000, 1.5, kind=kind)[0]
    path = tmp_path / "audio.wav"
    wavfile.write(path, 16000, np.round(signal / np.abs(signal).max() * 20000).astype(np.int16))
    assert_matches_original(extract_features(path).values, original_recipe(path))


@pytest.mark.parametrize("voice, speed, pitch, text", ESPEAK_CLIPS[:4], ids=[clip[0] for clip in ESPEAK_CLIPS[:4]])
def test_espeak_speech_matches_the_original(tmp_path, espeak_ng, voice, speed, pitch, text):
    spoken = espeak(tmp_path / "spoken.wav", voice, speed, pitch, text)
    converted = tmp_path / "speech16k.wav"  # what the original's ffmpeg call would have written
    wavfile.write(converted, 16000, to_pcm16(spoken))
    ours = extract_features(spoken).values
    assert_matches_original(ours, original_recipe(converted))
    assert 0.2 < ours[:, VOICED_COLUMN].mean() < 0.95


def test_layout_of_the_columns():
    features = extract_features(tone(16000, 1.0, frequency=200.0), 16000)
    values = features.values
    signal_rows = 1 + int(np.ceil((16000 - 400) / 160))
    assert values.shape == (signal_rows, 41) and values.dtype == np.float64 and np.isfinite(values).all()
    assert features.num_frames == signal_rows // 4
    voiced = values[:, VOICED_COLUMN] == 1
    assert set(np.unique(values[:, VOICED_COLUMN])) <= {0.0, 1.0} and voiced.mean() > 0.9
    np.testing.assert_allclose(values[3:-3, F0_COLUMN], 200.0, rtol=0.01)  # edge frames see the onset
    np.testing.assert_array_equal(features.f0, values[:, F0_COLUMN])
    np.testing.assert_array_equal(features.voiced, values[:, VOICED_COLUMN])


@pytest.mark.parametrize("rate, channels", [(8000, 1), (22050, 2), (44100, 6), (48000, 2), (48000, 1)])
def test_sample_rates_and_channel_counts(rate, channels):
    values = extract_features(tone(rate, 0.5, frequency=180.0, channels=channels), rate).values
    assert values.shape == (1 + int(np.ceil((8000 - 400) / 160)), 41) and np.isfinite(values).all()
    voiced = values[:, VOICED_COLUMN] == 1
    assert voiced.mean() > 0.8
    np.testing.assert_allclose(values[3:-3, F0_COLUMN], 180.0, rtol=0.01)  # edge frames see the onset


def test_int16_and_float_input_give_the_same_features():
    pcm = np.round(tone(44100, 0.5, kind="sawtooth", channels=2) * 32768).astype(np.int16)
    np.testing.assert_array_equal(extract_features(pcm, 44100).values, extract_features(pcm / 32768.0, 44100).values)


def test_dc_offset_does_not_change_the_features():
    pcm = np.round(tone(16000, 0.5, kind="sweep")[0] * 20000).astype(np.int16)
    np.testing.assert_allclose(extract_features(pcm + np.int16(5000), 16000).values,
                               extract_features(pcm, 16000).values, rtol=0, atol=1e-9)


def test_digital_silence_gives_silence_features_with_a_warning():
    for silence in (np.zeros(8000), np.full(8000, 0.3)):  # also a constant DC offset
        with pytest.warns(A2HWarning, match="digital silence"):
            values = extract_features(silence, 16000).values
        assert np.isfinite(values).all()
        log_floor = np.log(np.finfo(float).eps)
        np.testing.assert_array_equal(values[:, 0], log_floor)  # log frame energy
        np.testing.assert_allclose(values[:, 1:13], 0.0, atol=1e-12)  # DCT of a constant
        np.testing.assert_array_equal(values[:, 13:39], log_floor)
        np.testing.assert_array_equal(values[:, F0_COLUMN:], 0.0)


def test_audio_shorter_than_one_video_frame_is_an_error():
    signal = tone(16000, 1.0)[0]
    assert extract_features(signal[:MIN_SAMPLES], 16000).num_frames == 1
    with pytest.raises(Audio2HeadError, match=r"at least 45.1 ms"):
        extract_features(signal[:MIN_SAMPLES - 1], 16000)
    with pytest.raises(Audio2HeadError, match="empty"):
        extract_features(np.zeros(0), 16000)


def test_clipped_audio_warns():
    with pytest.warns(A2HWarning, match="clipped"):
        extract_features(np.clip(tone(16000, 0.5)[0] * 5, -1, 1), 16000)


def test_save_load_round_trip_and_validation(tmp_path):
    features = extract_features(tone(16000, 0.5), 16000)
    path = features.save(tmp_path / "features")
    assert path.name == "features.npy"
    np.testing.assert_array_equal(AudioFeatures.load(path).values, features.values)
    np.save(tmp_path / "wrong.npy", np.zeros((10, 40)))
    with pytest.raises(Audio2HeadError, match=r"\[rows, 41\]"):
        AudioFeatures.load(tmp_path / "wrong.npy")
    with pytest.raises(Audio2HeadError, match="not found"):
        AudioFeatures.load(tmp_path / "missing.npy")
    with pytest.raises(Audio2HeadError, match="NaN"):
        AudioFeatures(np.full((8, 41), np.nan))


def test_features_command(tmp_path, capsys):
    wavfile.write(tmp_path / "speech.wav", 22050, np.round(tone(22050, 0.5)[0] * 30000).astype(np.int16))
    parser = argparse.ArgumentParser()
    features_command.add_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["features", "--audio", str(tmp_path / "speech.wav"), "--out", str(tmp_path / "f.npy")])
    with warnings.catch_warnings():
        warnings.simplefilter("error", A2HWarning)
        assert args.func(args) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), extract_features(tmp_path / "speech.wav").values)
    assert "12 video frames" in capsys.readouterr().out


def test_progress_follows_the_pitch_tracker_without_changing_the_features():
    """progress(done, total) counts Harvest's channels and refinement chunks up to the total, after a few calls with
    nothing done yet (the node's bar and its cancel points); the features are the same as without it, and an
    exception raised in it stops the extraction."""
    from a2h_devkit.speech import speech_like
    signal = speech_like(2.0, 16000)
    calls = []
    followed = extract_features(signal, 16000, progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(followed.values, extract_features(signal, 16000).values)
    total = calls[-1][1]
    assert calls[:3] == [(0, 1), (0, 1), (0, total)]  # after decoding, mel features, decimation
    assert [done for done, _ in calls[3:]] == list(range(1, total + 1)) and {t for _, t in calls[2:]} == {total}

    def stop(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(signal, 16000, progress=stop)
