"""`python -m a2h_core`: generate end to end on reduced random weights, sub-commands, errors, Ctrl-C."""
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from a2h_core import cli
from a2h_core.cli.progress import ProgressBar
from a2h_devkit.media import read_video_info
from a2h_devkit.speech import speech_like, write_wav

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, reduced_weights):
    """Reduced random weights, 1 s of synthetic speech at 22.05 kHz stereo, and a 200x160 RGBA portrait."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("inputs")
    audio = write_wav(folder / "speech.wav", speech_like(1.0, 22050, channels=2), 22050)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (160, 200, 4), dtype=np.uint8), "RGBA").save(folder / "face.png")
    return SimpleNamespace(image=folder / "face.png", audio=audio, weights=reduced_weights)


def _generate_args(inputs, out, *extra):
    """generate on the noise 'portrait' (no face in it: the whole image unless a box is given)."""
    crop = [] if "--crop" in extra else ["--crop", "none"]
    return ["generate", "--image", str(inputs.image), "--audio", str(inputs.audio), "--weights", str(inputs.weights),
            "--out", str(out), *crop, *extra]


def test_generate_writes_the_video(inputs, tmp_path, capsys):
    out = tmp_path / "talk.mp4"
    code = cli.main(_generate_args(inputs, out, "--crop", "20,10,140,140", "--batch-size", "6"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "ETA" in captured.err and "frames/s" in captured.err
    info = read_video_info(out)
    assert info["fps"] == 25 and info["frames"] == 24
    assert (info["width"], info["height"]) == (200, 160)
    assert info["audio_codec"] == "aac" and info["audio_seconds"] == pytest.approx(24 / 25, abs=1024 / 22050)
    assert os.listdir(tmp_path) == ["talk.mp4"]


def test_subcommands_are_registered():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) == {"generate", "batch", "crop", "features", "pose", "convert", "download", "prepare", "train",
                             "evaluate", "personalize"}
    for name in commands:
        assert callable(parser.parse_args([name, *_minimal_args(name)]).func)


def _minimal_args(name):
    return {"generate": ["--image", "a.png", "--audio", "a.wav", "--weights", "w", "--out", "o.mp4"],
            "features": ["--audio", "a.wav", "--out", "f.npy"],
            "crop": ["--image", "a.png"],
            "pose": [],
            "convert": ["in.pth.tar"],
            "download": [],
            "batch": ["rows.csv", "--weights", "w"],
            "prepare": ["clips", "--out", "data"],
            "train": ["pose", "--data", "data", "--out", "run"],
            "evaluate": ["pose", "--weights", "w", "--data", "data"],
            "personalize": ["--video", "v.mp4", "--weights", "w", "--out", "p.safetensors"]}[name]


def test_missing_weights_name_both_ways_and_the_converter(inputs, tmp_path, capsys):
    out = tmp_path / "x.mp4"
    args = _generate_args(inputs, out)
    args[args.index("--weights") + 1] = str(tmp_path / "nowhere.safetensors")
    assert cli.main(args) == cli.EXIT_USER_ERROR
    message = capsys.readouterr().err
    assert "error:" in message and "Hub" in message and "convert" in message and "pth.tar" in message
    assert not out.exists()


@pytest.mark.parametrize("which,match", [("--image", "cannot read the source image"), ("--audio", "audio")])
def test_unreadable_inputs(inputs, tmp_path, capsys, which, match):
    broken = tmp_path / ("broken.png" if which == "--image" else "broken.wav")
    broken.write_bytes(b"definitely not media")
    args = _generate_args(inputs, tmp_path / "x.mp4")
    args[args.index(which) + 1] = str(broken)
    assert cli.main(args) == cli.EXIT_USER_ERROR
    message = capsys.readouterr().err
    assert match in message and "broken" in message
    assert sorted(os.listdir(tmp_path)) == [broken.name]


def test_ctrl_c_leaves_no_finished_looking_file(inputs, tmp_path, capsys, monkeypatch):
    def interrupt(self, done, total):
        raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBar, "__call__", interrupt)
    assert cli.main(_generate_args(inputs, tmp_path / "talk.mp4")) == cli.EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_progress_bar_text():
    import io

    stream = io.StringIO()
    bar = ProgressBar("Rendering", stream=stream)
    bar(5, 10)
    bar(10, 10)
    text = stream.getvalue()
    assert "5/10 frames" in text and "ETA" in text and "10 frames in" in text


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "a2h_core", "generate", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for option in ("--image", "--audio", "--weights", "--out", "--pose-curve", "--device", "--dtype",
                   "--batch-size", "--crop", "--save-intermediates"):
        assert option in result.stdout


def test_pose_predicts_the_curve_of_the_pose_stage(inputs, tmp_path):
    """`pose --image --audio --weights` writes exactly what the predictor gives: frames + 1 poses."""
    from a2h_core.audio.features import extract_features
    from a2h_core.inference.wrapper import Audio2HeadWrapper
    from a2h_core.io.image import prepare_source_image
    from a2h_core.io.weights import load_models
    from a2h_core.pose import load_pose_curve

    out = tmp_path / "predicted.json"
    code = cli.main(["pose", "--image", str(inputs.image), "--audio", str(inputs.audio),
                     "--weights", str(inputs.weights), "--crop", "none", "--out", str(out)])
    assert code == 0
    features = extract_features(inputs.audio)
    source, _ = prepare_source_image(inputs.image)
    expected = Audio2HeadWrapper(load_models(inputs.weights)).predict_poses(source, features)
    written = load_pose_curve(out, fps=None)
    assert len(written) == features.num_frames + 1
    # The command and this test load the weights into two model instances, which may take different CPU kernels
    # (e.g. for differently aligned weights): a float32 ulp of the normalised output is up to ~2e-5 once scaled to
    # the translations' range, so 5e-4 allows a few tens of ulps. A wrong stage or input moves poses by far more.
    np.testing.assert_allclose(written.values, expected.values, rtol=0, atol=5e-4)


def test_pose_prediction_needs_all_three_inputs(inputs, tmp_path, capsys):
    code = cli.main(["pose", "--image", str(inputs.image), "--out", str(tmp_path / "p.json")])
    assert code == cli.EXIT_USER_ERROR
    assert "--image, --audio and --weights together" in capsys.readouterr().err
