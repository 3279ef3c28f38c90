"""The speed path on CPU: batch norm folded at inference, the cached inference view, generator batch sizes, batched
motion-field windows, the compile fallback, the background encoder, and the GPU benchmark script in CPU mode.
Reduced-width random networks; no timing is asserted (tools/bench_levers.py and tools/benchmark.py measure)."""
import gc
import runpy
import sys
import threading
import warnings
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import FPS, ModelConfig
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.inference import acceleration
from a2h_core.inference.acceleration import (
    CPU_BATCH_SIZE,
    BackgroundConsumer,
    batch_for_memory,
    compiled,
    default_batch_size,
    inference_networks,
)
from a2h_core.inference.pipeline import PipelineConfig, generate
from a2h_core.inference.wrapper import Audio2HeadWrapper
from a2h_core.io.image import prepare_source_image
from a2h_core.modules.folding import fold_batch_norm
from a2h_core.modules.keypoints import Keypoints
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.pose import PoseCurve
from a2h_devkit.random_weights import randomize_batch_norm


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    models = Audio2HeadModels(ModelConfig.reduced())
    randomize_batch_norm(models, torch.Generator().manual_seed(1))  # no batch norm is an identity
    return models.eval()


@pytest.fixture(scope="module")
def source():
    rng = np.random.default_rng(1)
    return prepare_source_image(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))[0]


def _features(num_frames, seed=2):
    return AudioFeatures(values=np.random.default_rng(seed).normal(size=(num_frames * 4, 41)))


def _poses(count, seed=3):
    base = np.array([0.0, 0.0, 0.0, 20.0, 40.0, 280.0])
    rng = np.random.default_rng(seed)
    return PoseCurve(values=base + rng.normal(scale=[0.1, 0.1, 0.1, 10, 10, 20], size=(count, 6)), fps=FPS)


def _batch_norms(module):
    return [m for m in module.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d))]


def test_folding_keeps_every_output_and_leaves_the_networks_alone(models, source):
    before = {key: value.clone() for key, value in models.state_dict().items()}
    view = fold_batch_norm(models)
    # Every conv -> norm pair is gone from the view; the norms after residual sums stay.
    assert len(_batch_norms(view.generator)) < len(_batch_norms(models.generator)) // 2
    assert len(_batch_norms(view.audio2kp)) < len(_batch_norms(models.audio2kp))
    with torch.inference_mode():
        kp_source = models.kp_detector(source)
        np.testing.assert_allclose(view.kp_detector(source).value, kp_source.value, atol=1e-5)
        driving = Keypoints(kp_source.value + 0.05 * torch.randn(3, *kp_source.value.shape[1:]),
                            kp_source.jacobian.expand(3, -1, -1, -1))
        ours = view.generator(source, None, kp_source, driving)["prediction"]
        reference = models.generator(source, None, kp_source, driving)["prediction"]
        np.testing.assert_allclose(ours, reference, atol=1e-5)
        audio, boxes = torch.randn(1, 64, 4, 41), (torch.rand(1, 64, 256, 256) > 0.99).float() * 255
        np.testing.assert_allclose(view.audio2kp(audio, boxes, source).value,
                                   models.audio2kp(audio, boxes, source).value, atol=1e-5)
    # The networks keep their published layout and values, and stay trainable (unfused, gradients flow).
    after = models.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[key], before[key]) for key in before)
    models.train()
    try:
        models.generator(source, None, kp_source, driving)["prediction"].mean().backward()
        assert models.generator.first.norm.weight.grad is not None
    finally:
        models.zero_grad(set_to_none=True)
        models.eval()


def test_folding_needs_eval_mode(models):
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norm(Audio2HeadModels(ModelConfig.reduced()).train())


def test_the_view_is_reused_until_the_weights_change(models):
    first = inference_networks(models, channels_last=True)
    assert inference_networks(models, channels_last=True) is first
    assert Audio2HeadWrapper(models).networks is first
    with torch.no_grad():
        models.generator.first.conv.bias.add_(0.0)  # an in-place change, as an optimizer step makes
    rebuilt = inference_networks(models, channels_last=True)
    assert rebuilt is not first
    # The view shares the tensors it does not fold: no second copy of the weights.
    assert rebuilt.generator.bottleneck.r0.conv2.weight is models.generator.bottleneck.r0.conv2.weight


def test_networks_loaded_under_inference_mode_render(source):
    # ComfyUI runs nodes, the model loader included, under torch.inference_mode: the weights are inference tensors.
    torch.manual_seed(0)
    with torch.inference_mode():
        loaded = Audio2HeadModels(ModelConfig.reduced()).eval()
    torch.manual_seed(0)
    plain = Audio2HeadModels(ModelConfig.reduced()).eval()
    features, curve = _features(6), _poses(7)
    frames = []
    for models in (loaded, plain):
        wrapper = Audio2HeadWrapper(models)
        kp_source = wrapper.source_keypoints(source)
        kp_driving = wrapper.driving_keypoints(source, features, curve)
        frames.append(np.concatenate(list(wrapper.render_frames(source, kp_source, kp_driving, batch_size=3))))
    # Two instances with equal weights: uint8 frames within the last-bit bound (kernels may differ per instance).
    difference = np.abs(frames[0].astype(np.int16) - frames[1])
    assert difference.max() <= 1 and np.mean(difference > 0) < 0.001


def test_no_view_outlives_its_wrappers(models):
    # A cached view would keep the weights it shares alive (on a GPU: after ComfyUI offloaded the models).
    view = weakref.ref(Audio2HeadWrapper(models).networks)
    gc.collect()
    assert view() is None


def test_batched_motion_windows_equal_one_window_per_pass(models, source):
    features, curve = _features(98), _poses(99)  # three windows: 2 + 1 with two per pass
    one = Audio2HeadWrapper(models, windows_per_pass=1)
    two = Audio2HeadWrapper(models, windows_per_pass=2)
    chunks_one = list(one.iter_driving_keypoints(source, features, curve))
    chunks_two = list(two.iter_driving_keypoints(source, features, curve))
    assert [len(c) for c in chunks_two] == [len(c) for c in chunks_one] == [48, 32, 18]
    # Other batch shapes may take other convolution kernels; the softmax at temperature 0.1 magnifies the last bits.
    np.testing.assert_allclose(Keypoints.cat(chunks_two).value, Keypoints.cat(chunks_one).value, atol=1e-4)
    with pytest.raises(Audio2HeadError, match="windows_per_pass"):
        Audio2HeadWrapper(models, windows_per_pass=0)


def test_batch_sizes_per_device():
    assert default_batch_size(torch.device("cpu"), torch.float32, 256) == CPU_BATCH_SIZE
    per_frame = acceleration.GENERATOR_BYTES_PER_FRAME_256
    assert batch_for_memory(200e9, per_frame) == acceleration.CUDA_MAX_BATCH_SIZE  # capped
    assert batch_for_memory(10e9, 220 * 2**20) == 24  # 0.6 * 10 GB / 220 MiB = 26, down to a multiple of 8
    assert batch_for_memory(1e9, 220 * 2**20) == 2
    assert batch_for_memory(1e6, per_frame) == 1  # always at least one frame


def test_pipeline_default_batch_and_settings(models, source):
    result = generate((source[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8), _features(9), models,
                      PipelineConfig(crop=None))
    assert result.frames.shape == (9, 256, 256, 3)
    with pytest.raises(Audio2HeadError, match="compile"):
        generate(source, _features(9), models, PipelineConfig(compile="fast"))


def test_compile_falls_back_without_a_compiler(models, monkeypatch):
    monkeypatch.setattr(acceleration, "compile_unavailable", lambda: "no C++ compiler found")
    with pytest.warns(A2HWarning, match="no C.. compiler"):
        assert compiled(models.generator, "default") is models.generator


def test_compile_falls_back_when_compiling_fails(models, source, monkeypatch):
    def broken_compile(network, **kwargs):
        def fail(*args, **kwargs):
            raise RuntimeError("inductor: no working compiler")
        return fail

    monkeypatch.setattr(acceleration, "compile_unavailable", lambda: None)
    monkeypatch.setattr(torch, "compile", broken_compile)
    network = compiled(models.kp_detector, "max-autotune")
    with torch.inference_mode(), pytest.warns(A2HWarning, match="torch.compile failed"):
        keypoints = network(source)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once; later calls run eager silently
        np.testing.assert_array_equal(network(source).value, keypoints.value)
        np.testing.assert_array_equal(models.kp_detector(source).value, keypoints.value)


def test_compiled_generator_sees_one_batch_shape(models, source, monkeypatch):
    wrapper = Audio2HeadWrapper(models)
    shapes = []

    def fixed_shape_generator(source_image, source_features, kp_source, kp_driving):
        shapes.append(len(kp_driving))
        return {"prediction": torch.rand(len(kp_driving), 3, 256, 256)}

    monkeypatch.setattr(wrapper.networks.generator, "forward", fixed_shape_generator)
    monkeypatch.setattr(wrapper, "compiled", True)
    kp = Keypoints(torch.zeros(7, 10, 2), torch.eye(2).repeat(7, 10, 1, 1))
    batches = list(wrapper.render_frames(source, kp[:1], kp, batch_size=3))
    assert shapes == [3, 3, 3] and [len(b) for b in batches] == [3, 3, 1]  # the last batch padded, then trimmed


def test_background_consumer_keeps_order_and_raises_errors():
    seen, threads = [], set()

    def consume(item):
        threads.add(threading.get_ident())
        seen.append(item)

    with BackgroundConsumer(consume) as consumer:
        for item in range(20):
            consumer.put(item)
    assert seen == list(range(20)) and threading.get_ident() not in threads and consumer.seconds >= 0

    def fail(item):
        if item == 3:
            raise OSError("disk full")

    consumer = BackgroundConsumer(fail)
    with pytest.raises(OSError, match="disk full"):
        for item in range(100):
            consumer.put(item)
        consumer.close()


def test_background_consumer_drops_the_rest_when_the_caller_fails():
    seen = []
    with pytest.raises(KeyboardInterrupt), BackgroundConsumer(seen.append, depth=50) as consumer:
        for item in range(10):
            consumer.put(item)
        raise KeyboardInterrupt
    assert len(seen) <= 10


def test_gpu_benchmark_runs_in_cpu_mode(tmp_path, monkeypatch, capsys):
    script = Path(__file__).parents[1] / "tools" / "bench_gpu.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--device", "cpu", "--config", "reduced", "--frames", "6",
                                      "--batch-sizes", "2,4", "--dtypes", "fp32", "--json", str(tmp_path / "r.json")])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "frames/s" in out and "fp32" in out and "peak memory" in out
    assert (tmp_path / "r.json").is_file()


def test_gpu_frames_are_handed_over_one_batch_late(models, source, monkeypatch):
    """The pinned-buffer path (GPU only) with its copy and event stood in for: each batch is yielded after the next
    one has been started, once its copy is done, and the frames are those of the direct path."""
    wrapper = Audio2HeadWrapper(models)
    kp_source = wrapper.source_keypoints(source)
    kp = Keypoints(kp_source.value + 0.03 * torch.randn(5, *kp_source.value.shape[1:]),
                   kp_source.jacobian.expand(5, -1, -1, -1))
    direct = list(wrapper.render_frames(source, kp_source, kp, batch_size=2))
    started, waited = [], []

    class CopyDone:
        def __init__(self, index):
            self.index = index

        def synchronize(self):
            waited.append((self.index, len(started)))

    def to_host(frames):
        started.append(len(frames))
        return frames.clone(), CopyDone(len(started) - 1)

    monkeypatch.setattr(wrapper, "_pinned", True)
    monkeypatch.setattr(wrapper, "_to_host", to_host)
    late = list(wrapper.render_frames(source, kp_source, kp, batch_size=2))
    assert started == [2, 2, 1]
    assert waited == [(0, 2), (1, 3), (2, 3)]  # batch 0 waited for after batch 1 started, ...
    for ours, reference in zip(late, direct, strict=True):
        np.testing.assert_array_equal(ours, reference)
