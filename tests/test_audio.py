"""Decoding, resampling and normalisation (a2h_core.audio.decode): the original's ffmpeg + wavfile chain without
ffmpeg."""
import math
import shutil
import subprocess
import warnings

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from a2h_core.audio import decode
from a2h_core.audio.decode import load_audio, normalise_peak, resample_to_feature_rate, to_pcm16
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_devkit.speech import pcm16, speech_like


def no_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", A2HWarning)
        return fn(*args, **kwargs)


def test_16k_int16_passes_through_exactly_and_float_matches_int16():
    pcm = pcm16(speech_like(1.0, 16000)[0])
    np.testing.assert_array_equal(no_warnings(to_pcm16, pcm, 16000), pcm)
    np.testing.assert_array_equal(to_pcm16(pcm / 32768.0, 16000), pcm)
    np.testing.assert_array_equal(to_pcm16((pcm / 32768.0).astype(np.float32), 16000), pcm)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_int16_and_float_input_give_the_same_samples(rate):
    pcm = pcm16(speech_like(1.0, rate, channels=2))
    np.testing.assert_array_equal(load_audio(pcm, rate), load_audio(pcm / 32768.0, rate))
    np.testing.assert_array_equal(load_audio(pcm, rate), load_audio(torch.from_numpy(pcm), rate))


def test_normalisation_is_the_originals_arithmetic():
    pcm = np.round(speech_like(1.0, 16000)[0] * 20000 + 300).astype(np.int16)
    expected = pcm - np.mean(pcm)
    expected = expected / np.max(np.abs(expected))
    result = load_audio(pcm, 16000)
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == np.float64 and abs(result.mean()) < 1e-12 and np.abs(result).max() == 1.0


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 44099])
def test_resampler_keeps_a_tone_and_the_length(rate):
    seconds = 0.5
    t_in = np.arange(int(rate * seconds)) / rate
    out = resample_to_feature_rate(0.5 * np.sin(2 * np.pi * 1000 * t_in), rate)
    assert abs(out.size - math.ceil(t_in.size * 16000 / rate)) <= 1  # ffmpeg's end-of-stream rule
    t_out = np.arange(out.size) / 16000
    interior = slice(200, -200)
    np.testing.assert_allclose(out[interior], 0.5 * np.sin(2 * np.pi * 1000 * t_out)[interior], atol=2e-4)


def test_resampler_removes_what_16k_cannot_hold():
    t = np.arange(48000) / 48000
    out = resample_to_feature_rate(np.sin(2 * np.pi * 9000 * t), 48000)  # above the 8 kHz Nyquist of 16 kHz
    assert np.abs(out[200:-200]).max() < 1e-3


def _write_ffmpeg_reference(tmp_path, samples, rate):
    source, reference = tmp_path / "in.wav", tmp_path / "ref.wav"
    wavfile.write(source, rate, samples)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-async", "1", "-ac", "1", "-vn",
                    "-acodec", "pcm_s16le", "-ar", "16000", str(reference)], check=True)
    return source, wavfile.read(reference)[1]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_matches_the_originals_ffmpeg_conversion_on_float_input(tmp_path, rate, channels):
    samples = speech_like(2.0 + 0.0137 * rate / 44100, rate, channels=channels).T.astype(np.float32)
    source, reference = _write_ffmpeg_reference(tmp_path, samples, rate)
    ours = to_pcm16(source)
    assert ours.size == reference.size
    difference = ours.astype(int) - reference
    assert np.abs(difference).max() <= 1  # ffmpeg filters in float32, we in float64
    assert np.count_nonzero(difference) <= 0.002 * ours.size


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000])
def test_sample_count_matches_ffmpeg(tmp_path, rate):
    rng = np.random.default_rng(rate)
    for length in rng.integers(2000, 40000, 4):
        samples = (0.1 * rng.standard_normal(int(length))).astype(np.float32)
        source, reference = _write_ffmpeg_reference(tmp_path, samples, rate)
        assert to_pcm16(source).size == reference.size, f"{length} samples at {rate} Hz"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
def test_16_bit_input_is_within_ffmpegs_fixed_point_noise(tmp_path):
    # For 16-bit input ffmpeg resamples in 16-bit fixed point; we compute in float64 (so int16 == float input).
    samples = pcm16(speech_like(2.0, 44100, channels=2).T)
    source, reference = _write_ffmpeg_reference(tmp_path, samples, 44100)
    ours = to_pcm16(source)
    assert ours.size == reference.size
    assert np.abs(ours.astype(int) - reference).max() <= 4


def test_channels_are_averaged_and_layouts_understood():
    stereo = speech_like(1.0, 16000, channels=2)
    mono = load_audio(stereo.mean(axis=0), 16000)
    np.testing.assert_array_equal(load_audio(stereo, 16000), mono)
    np.testing.assert_array_equal(load_audio(stereo.T, 16000), mono)  # [T, C] is unambiguous here
    surround = speech_like(1.0, 48000, channels=6)
    np.testing.assert_array_equal(load_audio(surround, 48000), load_audio(surround.mean(axis=0), 48000))
    with pytest.raises(Audio2HeadError, match="channels from time"):
        load_audio(np.zeros((20, 30000)), 16000)
    with pytest.raises(Audio2HeadError, match="1-D"):
        load_audio(np.zeros((1, 2, 30000)), 16000)


def test_comfyui_audio_dict():
    waveform = torch.from_numpy(speech_like(1.0, 44100, channels=2)).float()[None]
    expected = load_audio(waveform[0].numpy(), 44100)
    np.testing.assert_array_equal(load_audio({"waveform": waveform, "sample_rate": 44100}), expected)
    np.testing.assert_array_equal(load_audio({"waveform": waveform, "sample_rate": 44100}, 44100), expected)
    with pytest.raises(Audio2HeadError, match="batch of 2"):
        load_audio({"waveform": waveform.repeat(2, 1, 1), "sample_rate": 44100})
    with pytest.raises(Audio2HeadError, match="contradicts"):
        load_audio({"waveform": waveform, "sample_rate": 44100}, 16000)
    with pytest.raises(Audio2HeadError, match="'waveform' and 'sample_rate'"):
        load_audio({"samples": waveform})
    with pytest.raises(Audio2HeadError, match=r"\[batch, channels, samples\]"):
        load_audio({"waveform": waveform[0], "sample_rate": 44100})


def test_nan_and_inf_become_zero_with_a_count():
    samples = speech_like(1.0, 16000)[0]
    broken = samples.copy()
    broken[[5, 500, 5000]] = [np.nan, np.inf, -np.inf]
    repaired = samples.copy()
    repaired[[5, 500, 5000]] = 0
    with pytest.warns(A2HWarning, match="3 NaN or infinite"):
        result = load_audio(broken, 16000)
    np.testing.assert_array_equal(result, load_audio(repaired, 16000))


def test_clipping_warns_but_a_single_full_scale_peak_does_not():
    samples = speech_like(1.0, 16000)[0]
    no_warnings(load_audio, samples / np.abs(samples).max(), 16000)  # peak-normalised to exactly 1.0
    with pytest.warns(A2HWarning, match="clipped"):
        load_audio(np.clip(samples * 4, -1, 1), 16000)  # flat tops at full scale
    with pytest.warns(A2HWarning, match="clipped"):
        pcm = to_pcm16(samples * 4, 16000)  # beyond full scale: limited like ffmpeg
    assert pcm.max() == 32767 and pcm.min() == -32768


def test_silence_and_constant_dc_come_back_as_zeros_with_a_warning():
    for signal in (np.zeros(16000), np.full(16000, 0.25), np.full(44100, 1000, dtype=np.int16)):
        with pytest.warns(A2HWarning, match="digital silence"):
            result = load_audio(signal, 16000)
        assert result.dtype == np.float64 and not result.any()
    with pytest.warns(A2HWarning, match="digital silence"):
        assert not normalise_peak(np.full(10, 7, dtype=np.int16)).any()


def test_dc_offset_is_removed():
    pcm = np.round(speech_like(1.0, 16000)[0] * 16000).astype(np.int16)
    np.testing.assert_allclose(load_audio(pcm + np.int16(3000), 16000), load_audio(pcm, 16000), rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad, rate, message", [
    (np.zeros(0), 16000, "empty"),
    (np.zeros(100, dtype=complex), 16000, "not supported"),
    (np.zeros(100), None, "sample rate is needed"),
    (np.zeros(100), 0, "positive whole number"),
    (np.zeros(100), 44100.5, "positive whole number"),
    ([0.0, 0.1], 16000, "Cannot read audio from a list"),
])
def test_bad_arrays_raise_clear_errors(bad, rate, message):
    with pytest.raises(Audio2HeadError, match=message):
        load_audio(bad, rate)


def _encode(path, codec, samples, rate, layout):
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="s16p", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_wav_and_flac_files_decode_to_the_array_result(tmp_path):
    pcm = pcm16(speech_like(1.0, 44100, channels=2))
    expected = load_audio(pcm, 44100)
    wavfile.write(tmp_path / "speech.wav", 44100, pcm.T)
    np.testing.assert_array_equal(load_audio(tmp_path / "speech.wav"), expected)
    np.testing.assert_array_equal(load_audio(str(tmp_path / "speech.wav")), expected)
    _encode(tmp_path / "speech.flac", "flac", pcm, 44100, "stereo")
    np.testing.assert_array_equal(load_audio(tmp_path / "speech.flac"), expected)


def test_mixing_block_size_does_not_change_the_samples(tmp_path, monkeypatch):
    # Decoded frames are mixed and joined into blocks as they come; the block size only bounds memory.
    pcm = pcm16(speech_like(1.0, 44100, channels=2))
    wavfile.write(tmp_path / "speech.wav", 44100, pcm.T)
    expected = to_pcm16(tmp_path / "speech.wav"), to_pcm16(pcm, 44100)
    monkeypatch.setattr(decode, "_MIX_BLOCK_SAMPLES", 10000)  # a few decoded frames per block
    np.testing.assert_array_equal(to_pcm16(tmp_path / "speech.wav"), expected[0])
    np.testing.assert_array_equal(to_pcm16(pcm, 44100), expected[1])


@pytest.mark.parametrize("suffix, codec", [(".mp3", "libmp3lame"), (".m4a", "aac"), (".ogg", "libopus")])
def test_lossy_files_decode(tmp_path, suffix, codec):
    av = pytest.importorskip("av")
    rate = 48000
    pcm = pcm16(speech_like(1.0, rate))
    try:
        _encode(tmp_path / f"speech{suffix}", codec, pcm, rate, "mono")
    except (av.FFmpegError, ValueError) as error:
        pytest.skip(f"PyAV cannot encode {codec} here: {error}")
    decoded = load_audio(tmp_path / f"speech{suffix}")
    assert abs(decoded.size - 16000) < 0.1 * 16000  # codecs add priming/padding
    reference = load_audio(pcm, rate)
    best = max(np.corrcoef(decoded[lag:lag + 12000], reference[:12000])[0, 1] for lag in range(0, 1200, 1))
    assert best > 0.9


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(Audio2HeadError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio" * 100)
    with pytest.raises(Audio2HeadError, match="Cannot decode"):
        load_audio(tmp_path / "junk.wav")
    wavfile.write(tmp_path / "ok.wav", 16000, np.zeros(100, dtype=np.int16))
    with pytest.raises(Audio2HeadError, match="file's own rate"):
        load_audio(tmp_path / "ok.wav", 16000)
