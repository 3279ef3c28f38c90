"""Training N_M with N_D and N_I frozen (`train motion --stage 1|2`) on synthetic talking-head clips at 128 px with
reduced widths and 16-frame windows.

The frozen teacher (N_D, N_I) is trained here for 100 steps with `train keypoints` (a random-weight N_I renders
nearly the same frame whatever the keypoints, so stage 2 would have no gradient to follow). The VGGs are narrowed
8x with random weights (ImageNet's cannot be downloaded here). One CPU thread."""
import contextlib
import json

import numpy as np
import pytest
import torch

from a2h_core.cli import main
from a2h_core.config import PerceptualConfig
from a2h_core.io.weights import load_models, read_metadata, read_safetensors, save_models
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.modules.motion_field import MotionFieldGenerator
from a2h_core.training.config import MotionLossConfig
from a2h_core.training.datasets import motion_window_sample, shard_clips
from a2h_core.training.motion_task import MotionTask, window_inputs
from a2h_core.training.shards import TrainingData
from a2h_core.training.video_metrics import keypoint_error
from a2h_devkit.synthetic_clips import small_frame_config
from a2h_devkit.torchrun import run_torchrun

SMALL = ["--data-workers", "0", "--threads", "1", "--batch-size", "2", "--lr", "1e-3"]
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # module-wide: the learning checks run on one thread


@pytest.fixture(scope="module")
def teacher(frames_data, frames_config, tmp_path_factory) -> str:
    """N_D + N_I trained 100 steps (the keypoints run's best weights)."""
    run = tmp_path_factory.mktemp("teacher") / "keypoints"
    assert main(["train", "keypoints", "--data", str(frames_data), "--out", str(run), "--config", str(frames_config),
                 "--vgg-width-divisor", "8", "--data-workers", "0", "--threads", "1", "--steps", "100",
                 "--batch-size", "4", "--lr", "1e-3", "--val-every", "100", "--checkpoint-every", "100"]) == 0
    return str(run / "best.safetensors")


@pytest.fixture(scope="module")
def stage1(frames_data, teacher, tmp_path_factory):
    run = tmp_path_factory.mktemp("motion") / "stage1"
    assert main(["train", "motion", "--stage", "1", "--init", teacher, "--data", str(frames_data), "--out", str(run),
                 *SMALL, "--steps", "60", "--heatmap-decay-steps", "30", "--log-every", "10", "--val-every", "60",
                 "--checkpoint-every", "60"]) == 0
    return run


def _ke(task: MotionTask, motion) -> float:
    return task.validate({"motion": motion}, CPU, contextlib.nullcontext).metrics["ke"]


def test_stage1_lowers_keypoint_error_on_held_out_windows(frames_data, teacher, stage1, capsys):
    """KE against the frozen N_D on the first window of each held-out clip: at most 0.7 of the untrained N_M's
    (the same seeded initialisation) after 60 steps."""
    val = shard_clips(TrainingData.open(frames_data), "val")
    init = load_models(teacher)
    task = MotionTask(init.config, MotionLossConfig(), [], val, init=init)
    torch.manual_seed(0)  # the trainer's seed: the N_M stage 1 started from
    untrained = _ke(task, MotionFieldGenerator(init.config).eval())
    trained = _ke(task, load_models(stage1 / "best.safetensors").audio2kp)
    static = []  # reference: N_D's keypoints of the window's first frame, held still
    for clip in val:
        _, _, reference, real = window_inputs({k: v[None] for k, v in motion_window_sample(clip, 0, 16, 0).items()},
                                              128)
        with torch.no_grad():
            target, still = init.kp_detector(real), init.kp_detector(reference)
        static.append(keypoint_error(still.value.expand_as(target.value), target.value))
    with capsys.disabled():
        print(f"\nN_M stage 1, held-out KE: untrained {untrained:.4f}, trained {trained:.4f} "
              f"({trained / untrained:.2f}x); N_D's first-frame keypoints held still {np.mean(static):.4f}")
    assert trained <= 0.7 * untrained
    records = [json.loads(line) for line in (stage1 / "log.jsonl").read_text().splitlines()]
    weights = [r["lambda_m"] for r in records if r["kind"] == "train"]
    assert weights[0] > 0.5 and weights[-1] == 0.0  # lambda_m decayed to 0 over 30 steps


def test_stage2_runs_lowers_reconstruction_and_keeps_teacher_frozen(frames_data, teacher, stage1, tmp_path,
                                                                    capsys):
    """`train motion --stage 2` from stage 1's weights runs and writes N_M with N_D, N_I (and N_H) unchanged; and
    its step lowers eq. 6's multi-scale reconstruction loss: 6 steps on one fixed batch of training windows lower
    it by at least 1 % (1.5 % measured). The drop is small: an N_I trained 100 steps mostly redraws the source, so
    its output depends little on the keypoints; the held-out window's numbers after the run are printed, not
    asserted."""
    init = str(stage1 / "best.safetensors")
    run = tmp_path / "stage2"
    assert main(["train", "motion", "--stage", "2", "--init", init, "--data", str(frames_data), "--out", str(run),
                 *SMALL, "--steps", "4", "--vgg-width-divisor", "8", "--render-frames", "2", "--log-every", "2",
                 "--val-every", "4"]) == 0
    assert read_metadata(run / "last.safetensors")["trained"] == "audio2kp (stage 2)"
    start, end = load_models(teacher).state_dict(), load_models(run / "last.safetensors").state_dict()
    for key in start:
        if not key.startswith("audio2kp."):
            assert torch.equal(start[key], end[key]), key

    data = TrainingData.open(frames_data)
    models = load_models(init)
    perceptual = PerceptualConfig(arch="vgg16", layers=("relu3_3",), width_divisor=8)
    task = MotionTask(models.config, MotionLossConfig(stage=2, perceptual=perceptual, render_frames=4),
                      shard_clips(data, "train"), shard_clips(data, "val"), init=models)
    torch.manual_seed(0)
    networks = task.networks()
    networks["motion"].train()
    windows = task.train_dataset(seed=0, min_length=2)
    batch = {key: torch.stack([windows[i][key] for i in range(2)]) for key in windows[0]}
    optimizer = torch.optim.Adam(networks["motion"].parameters(), lr=1e-3)

    def update(name, loss):
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    values = [task.training_step(networks, batch, update, contextlib.nullcontext)["reconstruction"]
              for _ in range(6)]
    first, last = values[0], values[-1]
    held_out = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()][-1]["metrics"]
    with capsys.disabled():
        print(f"\nN_M stage 2: reconstruction (eq. 6) on a fixed batch {first:.4f} -> {last:.4f}; held-out window "
              f"after the 4-step run: perceptual {held_out['perceptual']:.4f}, KE {held_out['ke']:.4f}")
    assert last < 0.99 * first, values


@pytest.fixture(scope="module")
def random_init(tmp_path_factory) -> str:
    """Random reduced-width networks as --init: enough for the resume and multi-process checks, which compare runs
    with each other, not learning."""
    path = tmp_path_factory.mktemp("motion_init") / "init.safetensors"
    torch.manual_seed(5)
    save_models(Audio2HeadModels(small_frame_config()), path)
    return str(path)


def _stage_options(stage: int) -> list[str]:
    return ["--stage", str(stage), *SMALL, *(["--vgg-width-divisor", "8", "--render-frames", "2"] if stage == 2 else
                                             ["--heatmap-decay-steps", "3"])]


@pytest.mark.parametrize("stage", [1, 2])
def test_motion_resume_continues_exactly(frames_data, random_init, tmp_path, stage):
    """2 steps, stop, resume to 4 == 4 steps uninterrupted, bit for bit (N_M's weights, Adam's moments, and stage
    1's decaying heatmap weight, which follows the restored step)."""
    common = ["--data", str(frames_data), "--init", random_init, *_stage_options(stage), "--log-every", "1",
              "--val-every", "2", "--checkpoint-every", "2"]
    assert main(["train", "motion", "--out", str(tmp_path / "whole"), "--steps", "4", *common]) == 0
    assert main(["train", "motion", "--out", str(tmp_path / "split"), "--steps", "2", *common]) == 0
    assert main(["train", "motion", "--out", str(tmp_path / "split"), "--steps", "4", "--resume"]) == 0
    whole, _ = read_safetensors(tmp_path / "whole" / "last.safetensors")
    split, _ = read_safetensors(tmp_path / "split" / "last.safetensors")
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    initial, _ = read_safetensors(random_init)
    assert not torch.equal(whole["audio2kp.kp.weight"], initial["audio2kp.kp.weight"])
    states = [torch.load(tmp_path / name / "state" / "last.pt", weights_only=False) for name in ("whole", "split")]
    assert torch.equal(*(s["optimizers"]["motion"]["state"][0]["exp_avg"] for s in states))
    logs = [[r for r in map(json.loads, (tmp_path / name / "log.jsonl").read_text().splitlines())
             if r["kind"] == "train"] for name in ("whole", "split")]
    assert [r["loss"] for r in logs[0]] == [r["loss"] for r in logs[1]]
    if stage == 1:
        assert [r["lambda_m"] for r in logs[1]] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])


@pytest.mark.parametrize("stage", [1, 2])
def test_motion_two_processes_match_one_process(frames_data, random_init, tmp_path, stage):
    """torchrun with 2 CPU processes (gloo), global batch 2, matches 1 process with batch 2: per-step losses to 1e-4
    relative (windows, equivariance transforms and stage 2's rendered frames are drawn with the samples) and at
    least 95 % of N_M's weights to 1e-5 (see tests/test_training.py on why not all). Batch norm is frozen: there is
    no SyncBatchNorm on the CPU."""
    common = ["--data", str(frames_data), "--init", random_init, *_stage_options(stage), "--batch-norm", "frozen",
              "--steps", "3", "--log-every", "1", "--val-every", "3"]
    assert main(["train", "motion", "--out", str(tmp_path / "one"), *common]) == 0
    result = run_torchrun(["train", "motion", "--out", str(tmp_path / "two"), *common])
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = ([r["loss"] for r in map(json.loads, (tmp_path / run / "log.jsonl").read_text().splitlines())
                 if r["kind"] == "train"] for run in ("one", "two"))
    assert len(one) == len(two) == 3
    np.testing.assert_allclose(two, one, rtol=1e-4)
    a, _ = read_safetensors(tmp_path / "one" / "last.safetensors")
    b, metadata = read_safetensors(tmp_path / "two" / "last.safetensors")
    assert json.loads(metadata["training"])["world_size"] == 2
    trained = [k for k in a if k.startswith("audio2kp.") and a[k].is_floating_point()]
    difference = torch.cat([(a[k] - b[k]).abs().flatten() for k in trained])
    assert float((difference <= 1e-5).float().mean()) >= 0.95
    initial, _ = read_safetensors(random_init)
    moved = torch.cat([(a[k] - initial[k]).abs().flatten() for k in trained])
    assert float((moved > 1e-5).float().mean()) > 0.5
