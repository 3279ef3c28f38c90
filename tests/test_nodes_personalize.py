"""The Audio2Head Personalize node, called directly through the ComfyUI test double (reduced random networks)."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
if importlib.util.find_spec("comfy_api") is None:
    sys.path.insert(0, str(TESTS / "comfy_stub"))

import nodes  # noqa: E402
from a2h_core.config import ModelConfig  # noqa: E402
from a2h_core.errors import Audio2HeadError  # noqa: E402
from a2h_core.io.weights import load_models, read_metadata, save_models  # noqa: E402
from a2h_core.modules.models import Audio2HeadModels  # noqa: E402
from a2h_devkit.synthetic_clips import SAMPLE_RATE, synthetic_clip  # noqa: E402
from nodes import comfy, model_loader  # noqa: E402
from nodes.personalize import Audio2HeadPersonalize  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # module-wide: the learning checks run on one thread


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    torch.manual_seed(0)
    save_models(Audio2HeadModels(ModelConfig.reduced()), tmp_path / "base.safetensors")
    monkeypatch.setenv("AUDIO2HEAD_MODELS_DIR", str(tmp_path))
    model_loader._RECENT.clear()
    return tmp_path


@pytest.fixture(scope="module")
def person():
    """4 s of a synthetic speaker at 30 fps, as ComfyUI's Load Video would give it: IMAGE, AUDIO, curve."""
    clip = synthetic_clip(4.0, seed=11, size=64, fps=30)
    image = torch.from_numpy(clip.frames).float() / 255.0
    audio = {"waveform": torch.from_numpy(clip.audio)[None, None], "sample_rate": SAMPLE_RATE}
    return image, audio, clip.poses


def _base(models_dir):
    return model_loader.load_cached("base.safetensors", "cpu", "fp32")


def test_personalize_saves_a_loadable_model_into_the_models_folder(models_dir, person):
    image, audio, curve = person
    base = _base(models_dir)
    before = {k: v.clone() for k, v in base.models.state_dict().items()}
    output = Audio2HeadPersonalize.execute(base, image, audio, curve, 30.0, 3, "my person")
    personal = output[0]
    saved = models_dir / "my person.safetensors"
    assert saved.is_file() and "my person.safetensors" in comfy.list_model_files()
    assert personal.source == str(saved)
    assert "held-out HE" in output.ui.as_dict()["text"][0]
    loaded = load_models(saved)
    assert "personalized" in read_metadata(saved)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, personal.models.state_dict()[key])
        if not key.startswith("audio2pose."):
            assert torch.equal(value, before[key])
    changed = [k for k in before if k.startswith("audio2pose.") and before[k].is_floating_point()
               and not torch.equal(before[k], loaded.state_dict()[k])]
    assert changed, "fine-tuning changed nothing"
    for key, value in base.models.state_dict().items():  # the base model socket value is left as it was
        assert torch.equal(value, before[key])


def test_cancel_between_steps_leaves_no_file(models_dir, person, monkeypatch):
    image, audio, curve = person

    class Cancelled(Exception):
        pass

    def cancel_at_two(self, done, total=None):
        if done >= 2:
            raise Cancelled

    monkeypatch.setattr(comfy.Progress, "__call__", cancel_at_two)
    with pytest.raises(Cancelled):
        Audio2HeadPersonalize.execute(_base(models_dir), image, audio, curve, 30.0, 5, "cancelled")
    assert sorted(p.name for p in models_dir.iterdir()) == ["base.safetensors"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "base"])
def test_bad_names_are_refused(models_dir, person, name):
    image, audio, curve = person
    with pytest.raises(Audio2HeadError, match="input 'name'"):
        Audio2HeadPersonalize.execute(_base(models_dir), image, audio, curve, 30.0, 1, name)


def test_registered():
    assert Audio2HeadPersonalize in nodes.NODE_CLASSES
    schema = Audio2HeadPersonalize.GET_SCHEMA()
    assert schema.node_id == "Audio2HeadPersonalize" and schema.is_output_node
