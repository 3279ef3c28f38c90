"""Issue 16, nodes: files are read and written only inside their folders, file contents never reach a message,
wrong wiring is named. The comfy_api stub (tests/comfy_stub) stands in for ComfyUI; one test per defect."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

TESTS = Path(__file__).resolve().parent
if importlib.util.find_spec("comfy_api") is None:
    sys.path.insert(0, str(TESTS / "comfy_stub"))

import nodes  # noqa: E402
from a2h_core.config import ModelConfig  # noqa: E402
from a2h_core.errors import Audio2HeadError  # noqa: E402
from a2h_core.modules.keypoints import Keypoints  # noqa: E402
from a2h_core.modules.models import Audio2HeadModels  # noqa: E402
from a2h_core.pose import PoseCurve  # noqa: E402

SECRET = "SECRET_API_KEY=sk-12345"


def node(node_id):
    return next(cls for cls in nodes.NODE_CLASSES if cls.GET_SCHEMA().node_id == node_id)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "audio2head"
    folder.mkdir()
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in Audio2HeadModels(ModelConfig.reduced()).state_dict().items()},
              str(folder / "reduced.safetensors"), metadata={"format": "audio2head", "format_version": "1",
                                                             "config": "reduced"})
    return folder


@pytest.fixture
def model(models_dir, monkeypatch):
    monkeypatch.setenv("AUDIO2HEAD_MODELS_DIR", str(models_dir))
    return node("Audio2HeadModelLoader").execute(weights="reduced.safetensors", device="cpu", dtype="fp32")[0]


@pytest.fixture
def input_folder(tmp_path, monkeypatch):
    """Outside ComfyUI the input and output folders are the working directory."""
    folder = tmp_path / "input"
    folder.mkdir()
    monkeypatch.chdir(folder)
    (tmp_path / "secret.csv").write_text(f"{SECRET}\n1,2,3\n")
    return folder


def image(height=64, width=64, channels=3):
    return torch.from_numpy(np.random.default_rng(0).random((1, height, width, channels), dtype=np.float32))


# ------------------------------------------------------------------------------------------------ Pose Load
@pytest.mark.parametrize("name", ["../secret.csv", "ABSOLUTE"])
def test_pose_load_reads_nothing_outside_the_input_folder(input_folder, name):
    name = str(input_folder.parent / "secret.csv") if name == "ABSOLUTE" else name
    with pytest.raises(Audio2HeadError, match="leaves ComfyUI's input folder") as error:
        node("Audio2HeadPoseLoad").execute(path=name, fps=25.0)
    assert "sk-12345" not in str(error.value)
    assert node("Audio2HeadPoseLoad").validate_inputs(path=name, fps=25.0) != True  # noqa: E712 (a message)


def test_pose_load_never_echoes_file_contents(input_folder):
    for text in (f"{SECRET}\n1,2,3\n", f"rx,ry,rz,tx,ty,tz\n1,2,{SECRET},4,5,6\n",
                 f'{{"keyframes": [{{"frame": "{SECRET}"}}]}}', f'{{"poses": [[1,2,3,4,5,"{SECRET}"]]}}'):
        name = "bad.json" if text.startswith("{") else "bad.csv"
        (input_folder / name).write_text(text)
        with pytest.raises(Audio2HeadError) as error:
            node("Audio2HeadPoseLoad").execute(path=name, fps=25.0)
        assert "sk-12345" not in str(error.value) and "SECRET" not in str(error.value)
        (input_folder / name).unlink()


def test_pose_load_lists_input_files_and_the_packs_examples(input_folder):
    (input_folder / "mine.json").write_text('{"poses": [[0,0,0,0,0,280],[0,0.1,0,0,0,280]]}')
    (input_folder / "photo.png").write_bytes(b"x")
    options = node("Audio2HeadPoseLoad").GET_SCHEMA().inputs[0].options["options"]
    assert "mine.json" in options and "example_openface_pose.csv" in options and "photo.png" not in options
    assert len(node("Audio2HeadPoseLoad").execute(path="mine.json", fps=25.0)[0]) == 2
    assert len(node("Audio2HeadPoseLoad").execute(path="example_openface_pose.csv", fps=25.0)[0]) > 1


# ------------------------------------------------------------------------------------------------ path escapes
def test_pose_save_stays_in_the_output_folder(input_folder):
    for prefix in ("../../escaped_pose", "/tmp/escaped_pose"):
        with pytest.raises(Audio2HeadError, match=r"input 'filename_prefix'.*leaves the output folder"):
            node("Audio2HeadPoseSave").execute(pose=PoseCurve.still(num_poses=3), filename_prefix=prefix,
                                               format="json", columns="axis_angle")
    assert not any(input_folder.parent.parent.glob("escaped_pose*")) and not any(input_folder.iterdir())


def test_model_loader_stays_in_its_folder(models_dir, monkeypatch):
    monkeypatch.setenv("AUDIO2HEAD_MODELS_DIR", str(models_dir))
    outside = models_dir.parent / "x.safetensors"
    outside.write_bytes((models_dir / "reduced.safetensors").read_bytes())
    with pytest.raises(Audio2HeadError, match=r"input 'weights'.*leaves models/audio2head"):
        node("Audio2HeadModelLoader").execute(weights="../x.safetensors", device="cpu", dtype="fp32")


def test_model_loader_applies_the_cpu_precision_rule(model, monkeypatch):
    import a2h_core.device

    with pytest.raises(Audio2HeadError, match="input 'dtype': fp16 is for GPUs"):
        node("Audio2HeadModelLoader").execute(weights="reduced.safetensors", device="cpu", dtype="fp16")
    monkeypatch.setattr(a2h_core.device, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(Audio2HeadError, match="input 'dtype': bf16 needs a CPU with native bf16"):
        node("Audio2HeadModelLoader").execute(weights="reduced.safetensors", device="cpu", dtype="bf16")


# ------------------------------------------------------------------------------------------------ sizes and wiring
def test_keyframes_widget_is_bounded():
    with pytest.raises(Audio2HeadError, match=r"input 'keyframes'.*at most 2,160,000"):
        node("Audio2HeadPoseKeyframes").execute(
            keyframes='{"keyframes":[{"frame":0,"yaw":0},{"frame":100000000,"yaw":10}]}')


def test_generator_names_swapped_keypoints(model):
    source = node("Audio2HeadKeypointDetector").execute(model=model, image=image())[0]
    driving = Keypoints.cat([source] * 5)
    with pytest.raises(Audio2HeadError, match="look swapped"):
        node("Audio2HeadGenerator").execute(model=model, image=image(), source_keypoints=driving,
                                            driving_keypoints=source, batch_size=4)


@pytest.mark.parametrize("picture, audio, name", [
    (image(), {"waveform": torch.zeros(1, 1, 160), "sample_rate": 16000}, "audio"),  # 10 ms
    (torch.full((1, 64, 64, 3), float("nan")), None, "image"),
    (image(channels=2), None, "image"),
])
def test_all_in_one_names_the_input(models_dir, monkeypatch, picture, audio, name):
    monkeypatch.setenv("AUDIO2HEAD_MODELS_DIR", str(models_dir))
    audio = audio or {"waveform": torch.rand(1, 1, 8000) - 0.5, "sample_rate": 16000}
    with pytest.raises(Audio2HeadError, match=f"^input '{name}'"):
        node("Audio2HeadAllInOne").execute(image=picture, audio=audio, weights="reduced.safetensors", device="cpu",
                                           dtype="fp32", batch_size=4, crop="none", paste_back=True,
                                           detector="auto")
