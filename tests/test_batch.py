"""`python -m a2h_core batch`: manifests, models loaded once, skip-and-resume, failed rows reported; Ray equals the
sequential run (skipped when Ray is not installed)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from a2h_core import cli
from a2h_core.errors import Audio2HeadError
from a2h_core.inference import batch
from a2h_core.inference.batch import read_manifest, run_batch
from a2h_core.inference.pipeline import PipelineConfig
from a2h_core.io.video import read_video_frames
from a2h_devkit.speech import speech_like, write_wav

ROOT = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Two small portraits and two short clips."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(5)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    write_wav(folder / "a.wav", speech_like(0.2, 16000), 16000)
    write_wav(folder / "b.wav", speech_like(0.2, 16000, channels=2), 16000)
    return folder


def _csv(path, rows):
    import csv

    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["image", "audio", "out", "crop"])
        writer.writerows(rows)
    return path


def test_batch_renders_reports_failures_and_resumes(media, tmp_path, reduced_weights, capsys, monkeypatch):
    loads = []
    real_load = batch.load_models
    monkeypatch.setattr(batch, "load_models", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.mp4").write_bytes(b"finished by an earlier run")  # outputs appear only when complete
    manifest = _csv(tmp_path / "rows.csv", [
        (str(media / "a.png"), str(media / "a.wav"), "out/a.mp4", "none"),
        (str(media / "b.png"), str(media / "missing.wav"), "out/broken.mp4", "none"),
        (str(media / "b.png"), str(media / "b.wav"), "out/b.mp4", "none")])
    args = ["batch", str(manifest), "--weights", str(reduced_weights)]
    assert cli.main(args) == 1
    captured = capsys.readouterr()
    assert "line 3 failed:" in captured.err and "missing.wav" in captured.err
    assert "1 rendered, 1 skipped (output existed), 1 failed" in captured.out
    assert "Rows [" in captured.err and "3/3 rows" in captured.err
    assert sorted(os.listdir(tmp_path / "out")) == ["a.mp4", "b.mp4"]  # relative to the manifest; nothing stray
    assert read_video_frames(tmp_path / "out" / "a.mp4")[0].shape[1:] == (256, 256, 3)
    assert len(loads) == 1  # the models are loaded once for the whole batch
    report = [json.loads(line) for line in (tmp_path / "rows.csv.report.jsonl").read_text().splitlines()]
    assert [(r["line"], r["status"]) for r in report] == [(2, "done"), (3, "failed"), (4, "skipped")]
    assert "missing.wav" in report[1]["error"] and "\n" not in report[1]["error"]
    first = (tmp_path / "out" / "a.mp4").stat().st_mtime_ns
    # A rerun skips the finished rows and retries only the failed one.
    assert cli.main(args) == 1
    assert "0 rendered, 2 skipped (output existed), 1 failed" in capsys.readouterr().out
    assert (tmp_path / "out" / "a.mp4").stat().st_mtime_ns == first


def test_jsonl_manifest_with_optional_columns(tmp_path, media):
    (tmp_path / "curve.csv").write_text("yaw,pitch,roll\n0,0,0\n")
    manifest = tmp_path / "rows.jsonl"
    manifest.write_text(json.dumps({"image": str(media / "a.png"), "audio": "a.wav", "out": "x.mp4",
                                    "pose_curve": "curve.csv", "crop": "0,0,64,64", "dtype": "bf16"}) + "\n\n"
                        + json.dumps({"image": "b.png", "audio": "b.wav", "out": "y.mp4"}) + "\n")
    rows = read_manifest(manifest)
    assert [row.line for row in rows] == [1, 3]
    assert rows[0].audio == str(tmp_path / "a.wav") and rows[0].image == str(media / "a.png")
    assert rows[0].pose_curve == str(tmp_path / "curve.csv") and (rows[0].crop, rows[0].dtype) == ("0,0,64,64", "bf16")
    assert rows[1].pose_curve is None and rows[1].crop is None


@pytest.mark.parametrize("text,match", [
    ("image,audio\na.png,a.wav\n", "line 2: no out"),
    ("image,audio,out,speed\na.png,a.wav,o.mp4,2\n", "unknown column"),
    ("image,audio,out\na.png,a.wav,o.mp4\nb.png,b.wav,./o.mp4\n", "lines 2 and 3 write the same file"),
    ("image,audio,out,dtype\na.png,a.wav,o.mp4,fp64\n", "dtype must be one of"),
    ("image,audio,out\n", "no rows"),
])
def test_bad_manifests_name_the_line(tmp_path, text, match):
    (tmp_path / "rows.csv").write_text(text)
    with pytest.raises(Audio2HeadError, match=match):
        read_manifest(tmp_path / "rows.csv")
    with pytest.raises(Audio2HeadError, match=r"\.csv or \.jsonl"):
        read_manifest(_csv(tmp_path / "rows.txt", []))


def test_ray_is_optional(monkeypatch, tmp_path, media, reduced_weights):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    rows = read_manifest(_csv(tmp_path / "rows.csv", [(str(media / "a.png"), str(media / "a.wav"), "a.mp4", "none")]))
    with pytest.raises(Audio2HeadError, match="pip install ray"):
        run_batch(rows, reduced_weights, PipelineConfig(), ray_address="local")


def test_ray_outputs_equal_the_sequential_run(tmp_path, media, reduced_weights):
    ray = pytest.importorskip("ray")
    rows = [(str(media / "a.png"), str(media / "a.wav"), "{}/a.mp4", "none"),
            (str(media / "b.png"), str(media / "b.wav"), "{}/b.mp4", "none")]
    config = PipelineConfig(crop="none")
    sequential = read_manifest(_csv(tmp_path / "seq.csv", [(i, a, o.format("seq"), c) for i, a, o, c in rows]))
    distributed = read_manifest(_csv(tmp_path / "ray.csv", [(i, a, o.format("ray"), c) for i, a, o, c in rows]))
    done = run_batch(sequential, reduced_weights, config, threads=1)
    assert {r.status for r in done} == {"done"}, done
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": ROOT}})
    try:
        assert int(ray.cluster_resources()["CPU"]) == 2
        results = run_batch(distributed, reduced_weights, config, ray_address="local", threads=1)
    finally:
        ray.shutdown()
    assert {r.status for r in results} == {"done"}, results
    for name in ("a.mp4", "b.mp4"):
        expected, _ = read_video_frames(tmp_path / "seq" / name)
        got, _ = read_video_frames(tmp_path / "ray" / name)
        # Same code path and the same thread count (1) in both: identical decoded frames are expected.
        assert got.shape == expected.shape and np.array_equal(got, expected), name


def test_an_unreachable_ray_address_is_one_clear_line(tmp_path, media, reduced_weights):
    pytest.importorskip("ray")
    rows = read_manifest(_csv(tmp_path / "rows.csv", [(str(media / "a.png"), str(media / "a.wav"), "a.mp4", "none")]))
    with pytest.raises(Audio2HeadError, match=r"cannot start or reach Ray at 'ray://127\.0\.0\.1:1'"):
        run_batch(rows, reduced_weights, PipelineConfig(), ray_address="ray://127.0.0.1:1")
    assert not (tmp_path / "a.mp4").exists()
