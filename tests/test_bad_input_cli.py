"""Issue 16, command line: options that were ignored or mis-handled, output paths checked before the slow stages,
cheap inputs before slow ones, SIGTERM like Ctrl-C. In-process through `cli.main` (fast); one test per defect."""
import json
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from scipy.io import wavfile

import a2h_core.cli.generate as generate_command
import a2h_core.cli.pose as pose_command
import a2h_core.device
from a2h_core import cli
from a2h_core.config import ModelConfig
from a2h_core.io.video import VideoWriter
from a2h_core.modules.models import Audio2HeadModels


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_inputs")
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in Audio2HeadModels(ModelConfig.reduced()).state_dict().items()},
              str(folder / "w.safetensors"), metadata={"format": "audio2head", "format_version": "1",
                                                       "config": "reduced"})
    t = np.arange(8000) / 16000
    wavfile.write(folder / "speech.wav", 16000, (0.3 * np.sin(2 * np.pi * 150 * t) * 32767).astype(np.int16))
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(folder / "face.png")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(folder / "tiny.png")
    return folder


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def _no_slow_stage(monkeypatch):
    """Fail the test if feature extraction or weight loading starts: the checks must come first."""
    def slow(*args, **kwargs):
        raise AssertionError("a slow stage ran before the cheap checks")
    monkeypatch.setattr(generate_command, "extract_features", slow)
    monkeypatch.setattr(generate_command, "load_models", slow)


# ------------------------------------------------------------------------------------------------ pose options
def test_pose_fps_zero_is_refused_not_ignored(tmp_path, capsys):
    code, err = run(capsys, "pose", "--still", "--fps", "0", "--out", tmp_path / "o.json")
    assert code == 2 and "--fps must be between 1 and 1000" in err and not (tmp_path / "o.json").exists()


def test_pose_still_frames_zero_is_refused_like_minus_one(tmp_path, capsys):
    for frames in ("0", "-1"):
        code, err = run(capsys, "pose", "--still", "--frames", frames, "--out", tmp_path / "o.json")
        assert code == 2 and "--frames must be a whole number >= 1" in err
    assert run(capsys, "pose", "--still", "--frames", "3", "--out", tmp_path / "o.json")[0] == 0
    assert len(json.loads((tmp_path / "o.json").read_text())["poses"]) == 3


def test_pose_plot_must_be_png(tmp_path, capsys):
    code, err = run(capsys, "pose", "--still", "--plot", tmp_path / "x.jpg")
    assert code == 2 and "must end in .png" in err and not any(tmp_path.iterdir())


def test_pose_sizes_are_bounded(tmp_path, capsys):
    keys = tmp_path / "keys.json"
    keys.write_text('{"keyframes":[{"frame":0,"yaw":0},{"frame":100000000,"yaw":10}]}')
    code, err = run(capsys, "pose", "--from-keyframes", keys, "--out", tmp_path / "o.json")
    assert code == 2 and "at most 2,160,000" in err
    code, err = run(capsys, "pose", "--still", "--smooth", "1e9", "--out", tmp_path / "o.json")
    assert code == 2 and "smoothing sigma" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]


def test_features_out_folder_is_refused(inputs, tmp_path, capsys):
    (tmp_path / "DIR").mkdir()
    code, err = run(capsys, "features", "--audio", inputs / "speech.wav", "--out", tmp_path / "DIR")
    assert code == 2 and "is an existing folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIR"]  # no DIR.npy beside it


def test_missing_parent_folders_are_created(inputs, tmp_path, capsys):
    assert run(capsys, "features", "--audio", inputs / "speech.wav", "--out", tmp_path / "a" / "f.npy")[0] == 0
    assert run(capsys, "pose", "--still", "--out", tmp_path / "b" / "o.json",
               "--plot", tmp_path / "c" / "p.png")[0] == 0
    assert (tmp_path / "a" / "f.npy").is_file() and (tmp_path / "b" / "o.json").is_file()
    assert (tmp_path / "c" / "p.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------------------------ generate
def _generate(inputs, out, *extra):
    return ["generate", "--image", inputs / "face.png", "--audio", inputs / "speech.wav", "--weights",
            inputs / "w.safetensors", "--out", out, *extra]


def test_output_folder_named_like_the_video_fails_at_once(inputs, tmp_path, capsys, monkeypatch):
    _no_slow_stage(monkeypatch)
    (tmp_path / "x.mp4").mkdir()
    code, err = run(capsys, *_generate(inputs, tmp_path / "x.mp4"))
    assert code == 2 and "is an existing folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]


def test_save_intermediates_pointing_at_a_file(inputs, tmp_path, capsys, monkeypatch):
    _no_slow_stage(monkeypatch)
    (tmp_path / "file").write_text("x")
    code, err = run(capsys, *_generate(inputs, tmp_path / "x.mp4", "--save-intermediates", tmp_path / "file"))
    assert code == 2 and "--save-intermediates" in err and "is a file, not a folder" in err


def test_out_equal_to_audio_is_refused(inputs, tmp_path, capsys, monkeypatch):
    _no_slow_stage(monkeypatch)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"the user's recording")
    code, err = run(capsys, "generate", "--image", inputs / "face.png", "--audio", clip, "--weights",
                    inputs / "w.safetensors", "--out", clip)
    assert code == 2 and "also an input" in err and clip.read_bytes() == b"the user's recording"


@pytest.mark.parametrize("extra, image, message", [
    ((), "tiny.png", "at least 32x32"),
    (("--batch-size", "0"), "face.png", "batch_size must be a whole number"),
    (("--dtype", "fp16"), "face.png", "fp16 is for GPUs"),
    (("--crop", "100,100,50,50"), "face.png", "lies entirely outside the 80x80 image"),
])
def test_cheap_inputs_are_checked_before_the_slow_stages(inputs, tmp_path, capsys, monkeypatch, extra, image,
                                                         message):
    _no_slow_stage(monkeypatch)
    code, err = run(capsys, "generate", "--image", inputs / image, "--audio", inputs / "speech.wav", "--weights",
                    inputs / "w.safetensors", "--out", tmp_path / "x.mp4", *extra)
    assert code == 2 and message in err and not any(tmp_path.iterdir())


def test_bf16_on_a_cpu_without_native_units_is_refused(inputs, tmp_path, capsys, monkeypatch):
    _no_slow_stage(monkeypatch)
    monkeypatch.setattr(a2h_core.device, "cpu_has_native_bf16", lambda: False)
    code, err = run(capsys, *_generate(inputs, tmp_path / "x.mp4", "--dtype", "bf16"))
    assert code == 2 and "native bf16 units (AVX512-BF16 or AMX)" in err


def test_help_no_longer_offers_bf16_on_any_cpu():
    parser = cli.build_parser()
    generate_parser = next(a for a in parser._actions if a.dest == "command").choices["generate"]
    dtype_help = next(a for a in generate_parser._actions if a.dest == "dtype").help
    assert "CPU or GPU" not in dtype_help and "AVX512-BF16" in dtype_help


# ------------------------------------------------------------------------------------------------ interruption
def test_sigterm_is_handled_like_ctrl_c(tmp_path, capsys, monkeypatch):
    """SIGTERM mid-write: exit 143, nothing named like the output, no temporary file."""
    out = tmp_path / "x.mp4"

    def save_then_terminated(curve, path, columns):
        with VideoWriter(out, 32, 32) as writer:
            writer.write(np.zeros((3, 32, 32, 3), np.uint8))
            os.kill(os.getpid(), signal.SIGTERM)
            writer.write(np.zeros((3, 32, 32, 3), np.uint8))

    monkeypatch.setattr(pose_command, "save_pose_curve", save_then_terminated)
    code, err = run(capsys, "pose", "--still", "--out", tmp_path / "o.json")
    assert code == 143 and "terminated" in err
    assert not any(tmp_path.iterdir())
    assert signal.getsignal(signal.SIGTERM) is not cli._raise_terminated  # the handler is restored
