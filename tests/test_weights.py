"""Weights I/O: conversion of the original pickle, validation, caching, Hub loading, dtype/device selection.

Published shapes come from the networks built on the meta device (no weights allocated), filled with random values:
one ~760 MB checkpoint per test session. Tests that load, convert or cache repeatedly use the reduced widths.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from a2h_core.cli import convert as convert_command
from a2h_core.config import ModelConfig
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.io import weights
from a2h_core.io.weights import SUBMODELS, convert_checkpoint, load_models, validate_state_dict
from a2h_core.modules.models import Audio2HeadModels
from a2h_devkit.random_weights import random_state, save_original

PUBLISHED = ModelConfig.published()
REDUCED = ModelConfig.reduced()
ROOT = Path(__file__).resolve().parents[1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def published_state():
    return random_state(PUBLISHED, seed=0)


@pytest.fixture(scope="module")
def published_pth(published_state, tmp_path_factory):
    optimizer = {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 2e-4, "params": [0]}]}
    return save_original(published_state, tmp_path_factory.mktemp("published") / "audio2head.pth.tar",
                         optimizer_generator=optimizer, epoch=7)


@pytest.fixture(scope="module")
def reduced_state():
    return random_state(REDUCED, seed=1)


@pytest.fixture(scope="module")
def reduced_file(reduced_state, tmp_path_factory):
    """A reduced-width safetensors file written with safetensors itself, independent of the converter."""
    path = tmp_path_factory.mktemp("reduced") / "reduced.safetensors"
    save_file(reduced_state, str(path))
    return path


def assert_state_equal(models: Audio2HeadModels, state: dict[str, torch.Tensor]) -> None:
    """Bit for bit: weights are copied (saved, converted, loaded, moved), never computed."""
    loaded = models.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key].cpu().to(value.dtype), value), key


# --------------------------------------------------------------------------------------------------------------------
# Published shapes: conversion round trip and the key/shape checks


def test_published_checkpoint_converts_and_strict_loads(published_state, published_pth, tmp_path):
    out = convert_checkpoint(published_pth, tmp_path / "audio2head.safetensors")

    metadata = weights.read_metadata(out)
    assert metadata["format"] == "audio2head"
    assert metadata["format_version"] == weights.FORMAT_VERSION
    assert metadata["source_sha256"] == sha256(published_pth)
    assert metadata["source_file"] == "audio2head.pth.tar"
    assert metadata["config"] == "published"
    assert metadata["ignored_entries"] == "epoch,optimizer_generator"
    assert json.loads(metadata["model_config"])["num_kp"] == 10

    tensors, _ = weights.read_safetensors(out)
    assert set(tensors) == set(published_state)
    assert {key.split(".", 1)[0] for key in tensors} == set(SUBMODELS)
    del tensors

    models = load_models(out)  # strict load into the published networks
    assert not models.training
    assert not any(p.requires_grad for p in models.parameters())
    assert_state_equal(models, published_state)


def test_cli_convert_reports_strict_load(published_pth, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="a2h_core")
    convert_command.add_command(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "converted.safetensors"
    args = parser.parse_args(["convert", str(published_pth), str(out)])

    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert f"Wrote {out}" in printed
    assert sha256(published_pth) in printed
    assert "epoch, optimizer_generator" in printed
    assert "Strict load into Audio2HeadModels (published config) OK" in printed
    assert weights.read_metadata(out)["source_sha256"] == sha256(published_pth)


def test_python_m_a2h_core_convert_is_wired_and_fails_cleanly(tmp_path):
    garbage = tmp_path / "audio2head.pth.tar"
    garbage.write_bytes(os.urandom(1000))
    run = subprocess.run([sys.executable, "-m", "a2h_core", "convert", str(garbage), str(tmp_path / "out.safetensors")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert f"{garbage} is not a readable PyTorch checkpoint: it is truncated or corrupt" in run.stderr
    assert "Traceback" not in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio2head.pth.tar"]


def test_missing_keys_are_listed_per_submodel_with_a_count(published_state):
    removed = [key for key in published_state
               if key.startswith("generator.") and not key.endswith("num_batches_tracked")][:8]
    removed.append("audio2kp.kp.weight")
    state = {key: value for key, value in published_state.items() if key not in removed}
    with pytest.raises(Audio2HeadError) as error:
        validate_state_dict(state, PUBLISHED, source="test.safetensors")
    message = str(error.value)
    assert "test.safetensors" in message
    assert "generator: missing (8): " in message and "… and 3 more" in message
    for key in removed[:5]:
        assert key in message
    assert "audio2kp: missing (1): audio2kp.kp.weight" in message


def test_unexpected_key_is_named(published_state):
    state = {**published_state, "generator.extra_head.weight": torch.zeros(3), "step": torch.zeros(1)}
    with pytest.raises(Audio2HeadError, match=r"generator: unexpected \(1\): generator.extra_head.weight") as error:
        validate_state_dict(state, PUBLISHED)
    assert "(no sub-model): unexpected (1): step" in str(error.value)


def test_wrong_shape_is_named_with_both_shapes(published_state):
    key = "kp_detector.kp.weight"
    wrong = published_state[key][:5]
    state = {**published_state, key: wrong}
    with pytest.raises(Audio2HeadError) as error:
        validate_state_dict(state, PUBLISHED)
    message = str(error.value)
    assert f"kp_detector: shape mismatch (1): {key} (file {list(wrong.shape)}, " \
           f"model {list(published_state[key].shape)})" in message
    assert "this file is not the published Audio2Head model" in message


def test_non_float_tensor_is_refused(published_state):
    key = "audio2pose.em_audio.resnet.conv1.weight"
    assert key in published_state
    state = {**published_state, key: published_state[key].to(torch.int32)}
    with pytest.raises(Audio2HeadError, match=f"wrong dtype \\(1\\): {key} \\(int32, expected floating point\\)"):
        validate_state_dict(state, PUBLISHED)


def test_nan_and_inf_weights_are_refused(published_state):
    key = "generator.final.weight"
    assert key in published_state
    broken = published_state[key].clone()
    broken.view(-1)[:3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    with pytest.raises(Audio2HeadError, match=f"NaN/Inf values \\(1\\): {key} \\(3 of {broken.numel()}\\)"):
        validate_state_dict({**published_state, key: broken}, PUBLISHED)


def test_published_state_passes_validation(published_state):
    validate_state_dict(published_state, PUBLISHED)
    # Batch norm step counters are optional: torch fills them, and older checkpoints lack them.
    validate_state_dict({k: v for k, v in published_state.items() if not k.endswith("num_batches_tracked")})


# --------------------------------------------------------------------------------------------------------------------
# Reduced widths: files, pickles, folders, cache, Hub, dtype/device


def test_reduced_file_in_published_config_says_it_is_not_the_published_model(reduced_file):
    with pytest.raises(Audio2HeadError, match=r"(?i)shape mismatch: this file is not the published Audio2Head model"):
        load_models(reduced_file)


def test_loaded_networks_compute_like_the_saved_ones(tmp_path):
    torch.manual_seed(0)
    reference = Audio2HeadModels(REDUCED).eval()
    path = tmp_path / "reduced.safetensors"
    save_file(reference.state_dict(), str(path))
    loaded = load_models(path, config=REDUCED)
    image, audio = torch.rand(1, 3, 256, 256), torch.randn(1, 3, 4, 41)
    with torch.no_grad():  # the LSTM's flat weights must follow the assigned parameters
        # Two model instances: the loaded weights sit in the file's buffer, not 64-byte aligned, and may take other
        # CPU matmul kernels than freshly allocated ones: outputs of about 0.1 then differ by a float32 ulp or two.
        # Stale LSTM weights would move them by orders of magnitude more.
        torch.testing.assert_close(loaded.audio2pose(image, audio), reference.audio2pose(image, audio),
                                   rtol=1e-5, atol=1e-6)


def _leave_mark(path):
    Path(path).write_text("code from the pickle ran")
    return "marked"


class _CodeOnLoad:
    """Unpickling this calls `_leave_mark`: exactly what weights_only=True must refuse to do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return _leave_mark, (str(self.marker),)


def test_pickle_that_needs_more_than_weights_only_is_refused(reduced_state, tmp_path):
    marker = tmp_path / "marker"
    path = save_original(reduced_state, tmp_path / "unsafe.pth.tar", hook=_CodeOnLoad(marker))
    with pytest.raises(Audio2HeadError, match="weights_only=False") as error:
        convert_checkpoint(path, tmp_path / "out.safetensors", config=REDUCED)
    assert "_leave_mark" in str(error.value)
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()
    with pytest.raises(Audio2HeadError, match="weights_only=False"):
        load_models(path, config=REDUCED)
    assert not marker.exists()
    # The marker mechanism works: a full unpickle would have run the code.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_pickle_without_the_four_state_dicts_is_refused(reduced_state, tmp_path):
    path = tmp_path / "partial.pth.tar"
    torch.save({"generator": {}, "kp_detector": {}, "epoch": 1}, path)
    with pytest.raises(Audio2HeadError, match="lacks the state dict\\(s\\) audio2pose, audio2kp"):
        convert_checkpoint(path, tmp_path / "out.safetensors", config=REDUCED)
    torch.save(torch.zeros(3), path)
    with pytest.raises(Audio2HeadError, match="holds a Tensor, not the dict"):
        convert_checkpoint(path, tmp_path / "out.safetensors", config=REDUCED)


def test_conversion_validates_before_writing(reduced_state, tmp_path):
    state = {key: value for key, value in reduced_state.items() if key != "audio2kp.kp.weight"}
    path = save_original(state, tmp_path / "incomplete.pth.tar")
    with pytest.raises(Audio2HeadError, match=r"audio2kp: missing \(1\): audio2kp.kp.weight"):
        convert_checkpoint(path, tmp_path / "out.safetensors", config=REDUCED)
    assert list(tmp_path.iterdir()) == [path]


def test_missing_key_in_file_fails_load(reduced_state, tmp_path):
    path = tmp_path / "missing.safetensors"
    save_file({k: v for k, v in reduced_state.items() if k != "generator.final.bias"}, str(path))
    with pytest.raises(Audio2HeadError, match=f"{path}.*\n.*generator: missing \\(1\\): generator.final.bias"):
        load_models(path, config=REDUCED)


def test_nan_in_file_fails_load(reduced_state, tmp_path):
    key = "kp_detector.jacobian.bias"
    path = tmp_path / "nan.safetensors"
    save_file({**reduced_state, key: torch.full_like(reduced_state[key], float("nan"))}, str(path))
    with pytest.raises(Audio2HeadError, match=f"NaN/Inf values \\(1\\): {key}"):
        load_models(path, config=REDUCED)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth.tar"])
def test_truncated_file_is_a_clear_error(reduced_state, reduced_file, tmp_path, suffix):
    if suffix == ".safetensors":
        data = reduced_file.read_bytes()
    else:
        data = save_original(reduced_state, tmp_path / "whole.pth.tar").read_bytes()
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Audio2HeadError, match="truncated or corrupt") as error:
        load_models(path, config=REDUCED)
    assert str(path) in str(error.value)
    assert "again" in str(error.value)  # the fix: download or convert again


@pytest.mark.parametrize("suffix", [".safetensors", ".pth.tar", ".pth"])
def test_garbage_file_is_a_clear_error(tmp_path, suffix):
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(Audio2HeadError, match="truncated or corrupt") as error:
        load_models(path, config=REDUCED)
    assert str(path) in str(error.value)


def test_unknown_file_type_and_missing_path(tmp_path):
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(Audio2HeadError, match=r"neither a .safetensors file nor an original checkpoint"):
        load_models(other)
    with pytest.raises(Audio2HeadError, match=r"does not exist.*audio2head.pth.tar.*python -m a2h_core convert"):
        load_models(tmp_path / "nothing.safetensors")


def test_newer_format_version_is_refused(reduced_state, tmp_path):
    path = tmp_path / "future.safetensors"
    save_file(reduced_state, str(path), metadata={"format": "audio2head", "format_version": "99"})
    with pytest.raises(Audio2HeadError, match="newer version"):
        load_models(path, config=REDUCED)


def test_folder_with_no_weights_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(Audio2HeadError, match=r"No weights file .* in .*python -m a2h_core convert"):
        load_models(tmp_path)


def test_folder_with_two_weights_files(reduced_file, tmp_path):
    for name in ("a.safetensors", "b.safetensors"):
        (tmp_path / name).write_bytes(reduced_file.read_bytes())
    with pytest.raises(Audio2HeadError, match=r"several weights files \(a.safetensors, b.safetensors\)"):
        load_models(tmp_path, config=REDUCED)
    assert isinstance(load_models(tmp_path, config=REDUCED, filename="b.safetensors"), Audio2HeadModels)


def test_folder_with_one_file_loads_it(reduced_state, reduced_file, tmp_path):
    (tmp_path / "audio2head.safetensors").write_bytes(reduced_file.read_bytes())
    assert_state_equal(load_models(tmp_path, config=REDUCED), reduced_state)


def test_original_checkpoint_is_converted_once_and_cached(reduced_state, tmp_path, monkeypatch):
    original = save_original(reduced_state, tmp_path / "audio2head.pth.tar", epoch=3)
    assert_state_equal(load_models(original, config=REDUCED), reduced_state)
    cache = tmp_path / "audio2head.safetensors"
    assert weights.read_metadata(cache)["source_sha256"] == sha256(original)
    written = cache.stat().st_mtime_ns

    def no_conversion(path):
        raise AssertionError("the cached conversion should have been reused")

    monkeypatch.setattr(weights, "read_original_checkpoint", no_conversion)
    assert_state_equal(load_models(original, config=REDUCED), reduced_state)
    # A ComfyUI user drops the pickle into models/audio2head: pickle + cache count as one file.
    assert_state_equal(load_models(tmp_path, config=REDUCED), reduced_state)
    assert cache.stat().st_mtime_ns == written


def test_cache_is_rebuilt_when_the_original_changes_or_the_cache_is_damaged(reduced_state, tmp_path):
    original = save_original(reduced_state, tmp_path / "audio2head.pth.tar")
    load_models(original, config=REDUCED)
    cache = tmp_path / "audio2head.safetensors"

    changed = random_state(REDUCED, seed=2)
    save_original(changed, original)
    assert_state_equal(load_models(original, config=REDUCED), changed)
    assert weights.read_metadata(cache)["source_sha256"] == sha256(original)

    cache.write_bytes(b"not a safetensors file")
    assert_state_equal(load_models(original, config=REDUCED), changed)
    assert weights.read_metadata(cache)["source_sha256"] == sha256(original)


def test_a_foreign_file_with_the_cache_name_is_never_overwritten(reduced_state, tmp_path):
    original = save_original(reduced_state, tmp_path / "audio2head.pth.tar")
    foreign = tmp_path / "audio2head.safetensors"
    save_file({"other.weight": torch.zeros(2)}, str(foreign), metadata={"note": "downloaded by the user"})
    before = foreign.read_bytes()
    with pytest.warns(A2HWarning, match="not a conversion of audio2head.pth.tar, so it is left alone"):
        assert_state_equal(load_models(original, config=REDUCED), reduced_state)
    assert foreign.read_bytes() == before


def test_unwritable_cache_folder_still_loads_with_a_warning(reduced_state, tmp_path, monkeypatch):
    original = save_original(reduced_state, tmp_path / "audio2head.pth.tar")

    def read_only_folder(tensors, dst, metadata):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(weights, "_save_atomically", read_only_folder)
    with pytest.warns(A2HWarning, match="Could not cache the converted weights"):
        assert_state_equal(load_models(original, config=REDUCED), reduced_state)


def test_interrupted_conversion_leaves_no_finished_looking_file(reduced_state, tmp_path, monkeypatch):
    original = save_original(reduced_state, tmp_path / "audio2head.pth.tar")

    def interrupted_save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(weights, "save_file", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        convert_checkpoint(original, tmp_path / "out.safetensors", config=REDUCED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio2head.pth.tar"]


def test_output_must_be_safetensors(reduced_state, tmp_path):
    original = save_original(reduced_state, tmp_path / "audio2head.pth.tar")
    with pytest.raises(Audio2HeadError, match=r"must end in .safetensors"):
        convert_checkpoint(original, tmp_path / "out.pt", config=REDUCED)
    assert weights.converted_cache_path(original) == tmp_path / "audio2head.safetensors"
    assert weights.converted_cache_path(tmp_path / "model.pth") == tmp_path / "model.safetensors"


@pytest.mark.parametrize("dtype, expected", [("fp16", torch.float16), ("bf16", torch.bfloat16),
                                             ("fp32", torch.float32), (torch.bfloat16, torch.bfloat16),
                                             ("float16", torch.float16)])
def test_dtype_selection(reduced_file, dtype, expected):
    models = load_models(reduced_file, config=REDUCED, dtype=dtype)
    for key, value in models.state_dict().items():
        assert value.dtype == (expected if not key.endswith("num_batches_tracked") else torch.int64), key


def test_bad_dtype_and_device_are_clear_errors(reduced_file):
    with pytest.raises(Audio2HeadError, match="Unsupported dtype 'int8'"):
        load_models(reduced_file, config=REDUCED, dtype="int8")
    with pytest.raises(Audio2HeadError, match="Unknown device 'gpu0'"):
        load_models(reduced_file, config=REDUCED, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(Audio2HeadError, match="no CUDA GPU"):
            load_models(reduced_file, config=REDUCED, device="cuda")


def test_device_selection(reduced_state, reduced_file):
    devices = ["cpu"] + (["cuda:0"] if torch.cuda.is_available() else [])
    for device in devices:
        models = load_models(reduced_file, config=REDUCED, device=device)
        assert {t.device for t in models.state_dict().values()} == {torch.device(device)}
        assert_state_equal(models, reduced_state)


def test_hub_repo_id_downloads_through_huggingface_hub(reduced_state, reduced_file, monkeypatch):
    calls = []

    def fake_download(repo_id, filename, revision=None):
        calls.append((repo_id, filename, revision))
        return str(reduced_file)

    monkeypatch.setattr(weights, "hf_hub_download", fake_download)
    assert_state_equal(load_models("someone/audio2head", config=REDUCED), reduced_state)
    load_models("someone/audio2head", config=REDUCED, revision="v1.0", filename="other.safetensors")
    assert calls == [("someone/audio2head", "audio2head.safetensors", None),
                     ("someone/audio2head", "other.safetensors", "v1.0")]


def test_failed_download_says_what_to_do_instead(monkeypatch):
    def failing_download(repo_id, filename, revision=None):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(weights, "hf_hub_download", failing_download)
    with pytest.raises(Audio2HeadError) as error:
        load_models("someone/audio2head", config=REDUCED)
    message = str(error.value)
    assert "'audio2head.safetensors'" in message and "'someone/audio2head'" in message
    assert "network unreachable" in message
    assert "audio2head.pth.tar" in message and "models/audio2head" in message
    assert "python -m a2h_core convert audio2head.pth.tar audio2head.safetensors" in message


def test_hub_offline_mode_uses_the_cache_and_fails_clearly_without_it(reduced_state, reduced_file, tmp_path):
    # HF_HUB_OFFLINE is read when huggingface_hub is imported, so this runs in a fresh interpreter.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--audio2head"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "audio2head.safetensors").write_bytes(reduced_file.read_bytes())
    script = textwrap.dedent("""
        import json, torch
        from a2h_core.config import ModelConfig
        from a2h_core.errors import Audio2HeadError
        from a2h_core.io.weights import load_models
        models = load_models("someone/audio2head", config=ModelConfig.reduced())
        result = {"checksum": float(sum(t.double().sum() for t in models.state_dict().values()))}
        try:
            load_models("someone/not-cached", config=ModelConfig.reduced())
        except Audio2HeadError as exc:
            result["error"] = str(exc)
        print(json.dumps(result))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_HOME": str(tmp_path / "hf-home"), "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    expected = float(sum(t.double().sum() for t in reduced_state.values()))
    assert result["checksum"] == pytest.approx(expected, rel=1e-12)
    assert "Offline mode is on (HF_HUB_OFFLINE)" in result["error"]
    assert "'someone/not-cached'" in result["error"] and "python -m a2h_core convert" in result["error"]



def test_load_uses_the_config_the_file_declares(reduced_state, tmp_path):
    """A file converted for the reduced test widths loads without naming its config; others default to published."""
    original = save_original(reduced_state, tmp_path / "reduced.pth.tar")
    converted = convert_checkpoint(original, tmp_path / "reduced.safetensors", config=REDUCED)
    assert load_models(converted).config == REDUCED
