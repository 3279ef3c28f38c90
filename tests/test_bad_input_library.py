"""Issue 16, library side: bad and hostile input gets one clear Audio2HeadError, before anything is allocated or
written, and interrupted work leaves nothing that looks complete. One test per defect of the issue."""
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from scipy.io import wavfile

import a2h_core.device
from a2h_core.audio.intake import downmix_matrix
from a2h_core.audio.soundtrack import load_soundtrack
from a2h_core.config import MAX_POSES, ModelConfig
from a2h_core.errors import Audio2HeadError
from a2h_core.inference.pipeline import PipelineConfig, generate
from a2h_core.io.image import prepare_source_image
from a2h_core.io.video import VideoWriter
from a2h_core.io.weights import convert_checkpoint, load_models, read_original_checkpoint
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.paths import checked_output_file
from a2h_core.pose import PoseCurve, curve_from_keyframes, load_pose_curve
from a2h_devkit.media import soundtrack_samples

RATE = 16000


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    path = folder / "reduced.safetensors"
    save_file({k: v.contiguous() for k, v in Audio2HeadModels(ModelConfig.reduced()).state_dict().items()},
              str(path), metadata={"format": "audio2head", "format_version": "1", "config": "reduced"})
    return path


@pytest.fixture(scope="module")
def models(weights):
    return load_models(weights)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    t = np.arange(RATE // 2) / RATE
    wavfile.write(path, RATE, (0.3 * np.sin(2 * np.pi * 150 * t) * 32767).astype(np.int16))
    return path


PORTRAIT = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------- 1. sizes are bounded
def test_keyframe_far_away_is_refused_before_allocating():
    for frame in (1e8, 1e12):
        with pytest.raises(Audio2HeadError, match="at most 2,160,000"):
            curve_from_keyframes({"keyframes": [{"frame": 0, "yaw": 0}, {"frame": frame, "yaw": 10}]})


def test_resampling_a_very_slow_curve_is_refused(tmp_path):
    with pytest.raises(Audio2HeadError, match="between 1 and 1000"):
        PoseCurve(np.zeros((2, 6)), fps=1e-9)
    slow = PoseCurve(np.zeros((MAX_POSES // 20, 6)), fps=1.0)  # 30 h at 1 fps: 25 fps would exceed the limit
    with pytest.raises(Audio2HeadError, match="limit of 2,160,001 poses"):
        slow.resampled(25)
    path = tmp_path / "slow.json"
    path.write_text('{"fps": 1e-9, "poses": [[0,0,0,0,0,280],[0,0.1,0,0,0,280]]}')
    with pytest.raises(Audio2HeadError, match=r"slow.json: fps must be between"):
        load_pose_curve(path)


def test_huge_smoothing_and_counts_are_refused():
    curve = PoseCurve.still(num_poses=5)
    with pytest.raises(Audio2HeadError, match="between 0 and 1000 poses"):
        curve.smoothed(1e9)
    with pytest.raises(Audio2HeadError, match="more than the limit"):
        PoseCurve.still(num_poses=10 ** 12)
    with pytest.raises(Audio2HeadError, match="more than the limit"):
        curve.fitted(MAX_POSES + 1)


def test_openface_timestamps_a_microsecond_apart_are_refused(tmp_path):
    header = "frame,face_id,timestamp,confidence,success,pose_Tx,pose_Ty,pose_Tz,pose_Rx,pose_Ry,pose_Rz"
    rows = [f"{i + 1},0,{i * 1e-6:.6f},0.98,1,0,0,280,0,0.01,0" for i in range(5)]
    path = tmp_path / "openface.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(Audio2HeadError, match=r"timestamps give 1e\+06 fps"):
        load_pose_curve(path)


def test_finite_but_absurd_pose_is_not_called_nan():
    with pytest.raises(Audio2HeadError, match=r"value of 1e\+300.*beyond the limit") as error:
        PoseCurve([[1e300, 0, 0, 0, 0, 280]])
    assert "NaN" not in str(error.value)


# ------------------------------------------------------------------------------------------- 2. precision rule
def test_reduced_precision_rule_on_cpu(monkeypatch):
    check = a2h_core.device.check_compute_dtype
    with pytest.raises(Audio2HeadError, match="fp16 is for GPUs"):
        check("cpu", "fp16")
    monkeypatch.setattr(a2h_core.device, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(Audio2HeadError, match="native bf16 units"):
        check("cpu", "bf16")
    monkeypatch.setattr(a2h_core.device, "cpu_has_native_bf16", lambda: True)
    assert check("cpu", "bf16") == torch.bfloat16
    assert check("cpu", "fp32") == torch.float32


def test_the_library_applies_the_rule(models, speech, monkeypatch):
    monkeypatch.setattr(a2h_core.device, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(Audio2HeadError, match="bf16 needs a CPU"):
        generate(PORTRAIT, speech, models, PipelineConfig(dtype="bf16"))
    with pytest.raises(Audio2HeadError, match="fp16 is for GPUs"):
        generate(PORTRAIT, speech, models, PipelineConfig(dtype="fp16"))


# ------------------------------------------------------------------------------------------- 3. valid but unusual
def test_nan_samples_in_a_file_become_silence_in_the_video(tmp_path):
    wave = (0.3 * np.sin(np.arange(RATE) / 10)).astype(np.float32)
    wave[[10, 500, 9000]] = np.nan
    wavfile.write(tmp_path / "nan.wav", RATE, wave)
    track = load_soundtrack(tmp_path / "nan.wav")
    out = tmp_path / "x.mp4"
    with VideoWriter(out, 32, 32, soundtrack=track) as writer:  # the encoder failed with EINVAL on NaN
        writer.write(np.zeros((5, 32, 32, 3), np.uint8))
    assert out.is_file() and np.isfinite(soundtrack_samples(load_soundtrack(tmp_path / "nan.wav"))).all()


def _write_51(path, amplitude=0.9):
    import av

    t = np.arange(4800) / 48000
    samples = np.stack([amplitude * np.sin(2 * np.pi * f * t) for f in (220, 330, 440, 50, 550, 660)])
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_f32le", rate=48000, layout="5.1")
        frame = av.AudioFrame.from_ndarray(samples.astype(np.float32), format="fltp", layout="5.1")
        frame.sample_rate = 48000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return samples


def test_51_audio_is_mixed_with_ffmpeg_weights_within_full_scale(tmp_path):
    matrix = downmix_matrix(("FL", "FR", "FC", "LFE", "BL", "BR"), 2)
    np.testing.assert_allclose(matrix[0], [0.4142, 0, 0.2929, 0, 0.2929, 0], atol=1e-4)  # ffmpeg -ac 2 (16-bit)
    np.testing.assert_allclose(downmix_matrix(("FL", "FR", "FC", "LFE", "BL", "BR"), 1)[0],
                               [0.2071, 0.2071, 0.2929, 0, 0.1464, 0.1464], atol=1e-4)  # ffmpeg -ac 1
    samples = _write_51(tmp_path / "s51.wav", amplitude=1.0)
    track = load_soundtrack(tmp_path / "s51.wav")
    mixed = soundtrack_samples(track)
    assert track.channels == 2 and np.abs(mixed).max() <= 1.0  # was 1.42 full scale
    np.testing.assert_allclose(mixed, matrix @ samples, atol=1e-6)
    if shutil.which("ffmpeg"):
        reference = tmp_path / "ffmpeg.wav"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(tmp_path / "s51.wav"), "-ac", "2", "-c:a",
                        "pcm_s16le", str(reference)], check=True)
        ffmpeg = wavfile.read(reference)[1].T / 32768.0
        assert np.abs(ffmpeg - mixed[:, :ffmpeg.shape[1]]).max() < 1e-4


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1000, 1)])
def test_tiny_images_are_refused(size):
    with pytest.raises(Audio2HeadError, match="at least 32x32"):
        prepare_source_image(np.zeros((size[1], size[0], 3), np.uint8))


def test_float_image_in_0_to_255_is_refused():
    with pytest.raises(Audio2HeadError, match=r"must be in 0..1.*divide by 255"):
        prepare_source_image(PORTRAIT.astype(np.float32))


def test_output_over_an_input_is_refused(models, speech, tmp_path):
    video = tmp_path / "speech.mp4"
    video.write_bytes(b"pretend")
    with pytest.raises(Audio2HeadError, match="also an input of this run"):
        generate(PORTRAIT, video, models, out_path=video)
    assert video.read_bytes() == b"pretend"


# ------------------------------------------------------------------------------------------- 4. paths
def _unwritable_folder(tmp_path):
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    probe = Path("/sys") / ".a2h-write-test"
    try:  # root writes through permissions; /sys refuses it on Linux
        probe.touch()
    except OSError:
        return Path("/sys")
    probe.unlink()
    pytest.skip("running as root with no unwritable folder at hand")


def test_output_paths_are_checked_before_work(tmp_path):
    (tmp_path / "x.mp4").mkdir()
    with pytest.raises(Audio2HeadError, match="is an existing folder"):
        checked_output_file(tmp_path / "x.mp4", "--out", suffixes=(".mp4",))
    with pytest.raises(Audio2HeadError, match="cannot write in the folder"):
        checked_output_file(_unwritable_folder(tmp_path) / "x.mp4", "--out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(Audio2HeadError, match="is a file, not a folder"):
        checked_output_file(tmp_path / "file" / "x.mp4", "--out")
    assert checked_output_file(tmp_path / "new" / "deeper" / "x.json", "--out").parent.is_dir()


def test_generate_checks_outputs_before_the_image_and_audio(models, tmp_path):
    (tmp_path / "x.mp4").mkdir()
    with pytest.raises(Audio2HeadError, match="is an existing folder"):
        generate(PORTRAIT, tmp_path / "missing.wav", models, out_path=tmp_path / "x.mp4")
    (tmp_path / "file").write_text("x")
    with pytest.raises(Audio2HeadError, match="is a file, not a folder"):
        generate(PORTRAIT, tmp_path / "missing.wav", models,
                 PipelineConfig(save_intermediates=tmp_path / "file"))


# ------------------------------------------------------------------------------------------- 5. interruption
def test_intermediates_of_an_interrupted_render_are_removed(models, speech, tmp_path):
    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(PORTRAIT, speech, models, PipelineConfig(save_intermediates=tmp_path / "inter", batch_size=2,
                                                           crop="none"),
                 out_path=tmp_path / "x.mp4", progress=stop)
    left = sorted(p.name for p in (tmp_path / "inter").iterdir())
    assert left == ["features.npy", "poses.npy", "source.png", "source_kp_jacobian.npy", "source_kp_value.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inter"]  # no video, no temporary file


# ------------------------------------------------------------------------------------------- 6. weights
class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_code_running_pickle_is_refused_as_such(tmp_path):
    path = tmp_path / "evil.pth.tar"
    torch.save({"audio2pose": {"w": _System(tmp_path / "PWNED")}}, path)
    with pytest.raises(Audio2HeadError, match=r"would run code.*posix.system|would run code.*nt.system") as error:
        read_original_checkpoint(path)
    assert "truncated" not in str(error.value) and not (tmp_path / "PWNED").exists()


def test_convert_names_safetensors_and_folders(weights, tmp_path):
    with pytest.raises(Audio2HeadError, match="already a safetensors file"):
        convert_checkpoint(weights, tmp_path / "out.safetensors")
    with pytest.raises(Audio2HeadError, match="is a folder"):
        convert_checkpoint(tmp_path, tmp_path / "out.safetensors")
    with pytest.raises(Audio2HeadError, match="is a folder, not an image file"):
        prepare_source_image(tmp_path)
    assert not (tmp_path / "out.safetensors").exists()


def test_load_models_filename_cannot_leave_its_folder(weights, tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    shutil.copy(weights, tmp_path / "x.safetensors")
    for name in ("../x.safetensors", str(tmp_path / "x.safetensors")):
        with pytest.raises(Audio2HeadError, match="leaves the folder"):
            load_models(inner, filename=name)


# ------------------------------------------------------------------------------------------- 7. wrong types
@pytest.mark.parametrize("arguments, message", [
    ({"models": None}, "models must be the Audio2HeadModels"),
    ({"models": "weights.safetensors"}, "models must be the Audio2HeadModels"),
    ({"config": PipelineConfig(batch_size="4")}, "batch_size must be a whole number"),
    ({"config": PipelineConfig(batch_size=2.5)}, "batch_size must be a whole number"),
    ({"config": PipelineConfig(crop=(1, 2, 3))}, "crop must be"),
    ({"config": PipelineConfig(feather=math.nan)}, "feather must be"),
    ({"config": PipelineConfig(crf=-5)}, "crf must be"),
    ({"config": PipelineConfig(crf=99)}, "crf must be"),
    ({"pose_curve": np.zeros((10, 6))}, "pose_curve must be a PoseCurve"),
    ({"features": np.zeros((40, 41))}, "features must be AudioFeatures"),
])
def test_wrong_types_name_the_argument(models, speech, arguments, message):
    arguments = {"models": models, **arguments}
    with pytest.raises(Audio2HeadError, match=message):
        generate(PORTRAIT, speech, **arguments)


def test_crop_as_a_tuple_is_accepted():
    source, crop = prepare_source_image(PORTRAIT, (0, 0, 48, 48))
    assert source.shape == (1, 3, 256, 256) and crop.box.width == 48


def test_load_models_none():
    with pytest.raises(Audio2HeadError, match="weights source must be a file or folder path"):
        load_models(None)


def test_audio_rate_and_duration_are_bounded(tmp_path):
    from a2h_core.audio.features import extract_features
    from a2h_core.audio.intake import check_duration

    wavfile.write(tmp_path / "one_hertz.wav", 1, np.zeros(50_000, np.int16))  # 14 h at 1 Hz: gigabytes at 16 kHz
    with pytest.raises(Audio2HeadError, match=r"is 1 Hz; accepted are 1000 \.\. 768000 Hz"):
        extract_features(tmp_path / "one_hertz.wav")
    with pytest.raises(Audio2HeadError, match="more than the limit of 24 h"):
        check_duration(25 * 3600 * 16000, 16000)
