"""The pack under ComfyUI's model management, its cancel points and the Hub download's progress, through the CI
stub of `comfy` (tests/comfy_stub/comfy: ModelPatcher, model_management, ProgressBar as ComfyUI has them on a CPU).

tests/test_comfyui_memory.py checks the same in a real ComfyUI server (opt-in).
"""
import collections
import gc
import hashlib
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from comfy import model_management
from comfy.model_patcher import ModelPatcher

from a2h_core.audio.features import AudioFeatures
from a2h_core.config import FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES
from a2h_devkit.speech import speech_like
from nodes import model_loader

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_model_management():
    """No model from another test in ComfyUI's list or the pack's cache, and no pending Cancel."""
    model_management.unload_all_models()
    model_management.current_loaded_models.clear()
    model_management.interrupt_current_processing(False)
    model_loader._RECENT.clear()
    gc.collect()
    yield
    model_management.interrupt_current_processing(False)


def ours_loaded(managed) -> bool:
    return any(loaded.model is managed for loaded in model_management.current_loaded_models)


# ------------------------------------------------------------------------------------------------ model management
def test_comfyui_loads_unloads_and_releases_our_networks(weights, run_node, comfy_image):
    """The loader's networks are a ModelPatcher that a stage loads through load_models_gpu; "Unload models"
    (unload_all_models) takes them off ComfyUI's list and out of the pack's keep-alive, so that once ComfyUI drops
    its cached node outputs (/free's free_memory) nothing holds them; the next run loads them again and works."""
    model = run_node("Audio2HeadModelLoader", weights=weights, device="auto", dtype="auto")[0]
    assert isinstance(model.managed, ModelPatcher) and model.managed.model_size() > 0
    assert not ours_loaded(model.managed)
    image = comfy_image()
    before = run_node("Audio2HeadKeypointDetector", model=model, image=image)[0]
    assert ours_loaded(model.managed)  # ComfyUI knows it, and keeps it loaded after the stage as core models

    model_management.unload_all_models()
    assert not ours_loaded(model.managed) and not model_loader._RECENT
    networks = weakref.ref(model.models)
    del model  # what /free {"free_memory": true} does to the loader's cached output
    gc.collect()
    assert networks() is None, "something in the pack still holds the unloaded networks"

    again = run_node("Audio2HeadModelLoader", weights=weights, device="auto", dtype="auto")[0]
    after = run_node("Audio2HeadKeypointDetector", model=again, image=image)[0]
    torch.testing.assert_close(after.value, before.value)
    assert ours_loaded(again.managed)


def test_the_loaded_networks_are_reused_while_something_holds_them(weights, run_node):
    first = run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="fp32")[0]
    assert run_node("Audio2HeadModelLoader", weights=weights, device="auto", dtype="auto")[0].managed is first.managed
    assert [first.managed] == model_loader._RECENT  # kept for the all-in-one node, which has no loader output
    managed = weakref.ref(first.managed)
    del first
    gc.collect()
    assert managed() is not None  # the keep-alive holds the most recent networks until ComfyUI unloads them
    model_loader._RECENT.clear()
    gc.collect()
    assert managed() is None  # the pack's cache itself holds nothing


def test_on_a_gpu_the_networks_stay_loaded_and_comfyui_offloads_them(weights, run_node, comfy_image, monkeypatch):
    """A GPU load device and a CPU offload device (simulated by two CPU devices): a stage loads the networks whole
    and leaves them there; when ComfyUI frees memory for another model (low-VRAM offloading) or unloads all, they
    go to the offload device; the next stage loads them again."""
    gpu = torch.device("cpu", 0)
    monkeypatch.setattr(model_management, "get_torch_device", lambda: gpu)
    model = run_node("Audio2HeadModelLoader", weights=weights, device="auto", dtype="auto")[0]
    assert (model.load_device, model.offload_device) == (gpu, torch.device("cpu"))
    moves = []  # (the weights stay where they are: only the calls are recorded)
    monkeypatch.setattr(type(model.models), "to", lambda self, device: moves.append(device) or self)
    image = comfy_image()
    run_node("Audio2HeadKeypointDetector", model=model, image=image)
    run_node("Audio2HeadKeypointDetector", model=model, image=image)
    assert moves and set(moves) == {gpu}  # loaded, and not moved back after a stage

    moves.clear()
    model_management.free_memory(model.managed.model_size(), gpu)  # another model needs the memory
    assert moves == [torch.device("cpu")] and not ours_loaded(model.managed)
    run_node("Audio2HeadKeypointDetector", model=model, image=image)
    assert moves[-1] == gpu and ours_loaded(model.managed)
    model_management.unload_all_models()
    assert moves[-1] == torch.device("cpu") and not ours_loaded(model.managed)


# ------------------------------------------------------------------------------------------------ cancel points
# Cancel must stop a stage at its next cancel point: after the press, at most the unit of work then running (an
# audio-embedding chunk, an LSTM step, a pitch-tracker channel batch or chunk) ends, and no further one starts. How
# long such a unit takes is measured by tools/bench_cancel.py, not asserted here; the latency is printed.
class Cancel:
    """Presses Cancel (ComfyUI's /interrupt: interrupt_current_processing) `delay_s` after the first unit of work
    starts, and counts the units that start after the press, by kind."""

    def __init__(self, delay_s: float = 0.2):
        self.started, self.delay_s = threading.Event(), delay_s
        self.pressed_at = None
        self.after = collections.Counter()

    def unit(self, kind: str):
        """A callback (or forward pre-hook) to call when a unit of work of this kind starts."""
        def started(*args, **kwargs):
            self.started.set()
            if self.pressed_at is not None:
                self.after[kind] += 1
        return started

    def run(self, stage) -> float:
        """Runs `stage()`, which must end with InterruptProcessingException; the seconds from the press to then."""
        def press():
            self.started.wait(60)
            time.sleep(self.delay_s)
            self.pressed_at = time.perf_counter()
            model_management.interrupt_current_processing()

        presser = threading.Thread(target=press)
        presser.start()
        try:
            with pytest.raises(model_management.InterruptProcessingException):
                stage()
            stopped = time.perf_counter()
        finally:
            presser.join()
        assert self.pressed_at is not None, "the stage ended before Cancel was pressed: make it longer"
        return stopped - self.pressed_at


def long_features(frames: int) -> AudioFeatures:
    rng = np.random.default_rng(0)
    return AudioFeatures(rng.normal(size=(frames * FEATURE_ROWS_PER_FRAME, NUM_AUDIO_FEATURES)).astype(np.float32))


def test_cancel_stops_pose_prediction_at_the_next_step(weights, run_node, comfy_image, monkeypatch):
    """2 minutes of audio: Cancel pressed during the audio embeddings, and during the LSTM steps (reached sooner with
    the audio embedded in one pass)."""
    import a2h_core.modules.pose_predictor as pose_predictor

    model = run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="fp32")[0]
    features, image = long_features(3000), comfy_image()
    for part, chunk in ((model.models.audio2pose.em_audio, pose_predictor.AUDIO_EMBEDDING_CHUNK),
                        (model.models.audio2pose.lstm, 10**6)):
        monkeypatch.setattr(pose_predictor, "AUDIO_EMBEDDING_CHUNK", chunk)
        cancel = Cancel()
        hook = part.register_forward_pre_hook(cancel.unit("pass"))
        try:
            latency = cancel.run(lambda: run_node("Audio2HeadPosePredictor", model=model, image=image,
                                                  features=features))
        finally:
            hook.remove()
        print(f"\npose prediction ({type(part).__name__}): Cancel took {latency * 1000:.0f} ms")
        assert cancel.after["pass"] <= 1  # one may start between the last check and the press


def test_cancel_stops_the_feature_stages_at_the_next_step(weights, run_node, comfy_image, monkeypatch):
    """A minute of speech: Cancel while the features are computed, in the Audio Features node and in the
    all-in-one node's feature stage, and during the all-in-one node's pose prediction."""
    import a2h_core.audio.harvest as harvest

    waveform = torch.from_numpy(speech_like(60.0, 16000)).float().reshape(1, 1, -1)
    audio = {"waveform": waveform, "sample_rate": 16000}
    image = comfy_image()
    all_in_one = {"image": image, "audio": audio, "weights": weights, "device": "cpu", "dtype": "fp32",
                  "batch_size": 4, "crop": "none", "paste_back": False, "detector": "auto"}
    channel_f0, refine_chunk = harvest._channel_f0, harvest._refine_chunk
    for node, inputs in (("Audio2HeadAudioFeatures", {"audio": audio}), ("Audio2HeadAllInOne", all_in_one)):
        cancel = Cancel(delay_s=0.5)
        channel, chunk = cancel.unit("channel"), cancel.unit("refinement chunk")
        monkeypatch.setattr(harvest, "_channel_f0", lambda *a, c=channel, **k: c() or channel_f0(*a, **k))
        monkeypatch.setattr(harvest, "_refine_chunk", lambda *a, c=chunk, **k: c() or refine_chunk(*a, **k))
        latency = cancel.run(lambda node=node, inputs=inputs: run_node(node, **inputs))
        print(f"\n{node} features: Cancel took {latency * 1000:.0f} ms ({dict(cancel.after)} after it)")
        # the channel batches already handed to the pitch tracker's threads finish, a few channels each, then no
        # more of the ~150 channels start; at most the refinement chunk between two checks
        assert cancel.after["channel"] < 30 and cancel.after["refinement chunk"] <= 1

    cancel = Cancel()  # the all-in-one's pose stage (long features given; the audio embedded in one pass)
    monkeypatch.setattr("a2h_core.modules.pose_predictor.AUDIO_EMBEDDING_CHUNK", 10**6)
    model = run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="fp32")[0]
    hook = model.models.audio2pose.lstm.register_forward_pre_hook(cancel.unit("step"))
    monkeypatch.setattr("nodes.all_in_one.extract_features", lambda audio, progress=None: long_features(3000))
    try:
        latency = cancel.run(lambda: run_node("Audio2HeadAllInOne", **all_in_one))
    finally:
        hook.remove()
    print(f"\nall-in-one pose prediction: Cancel took {latency * 1000:.0f} ms")
    assert cancel.after["step"] <= 1


# ------------------------------------------------------------------------------------------------ Hub progress
class FakeHub(http.server.ThreadingHTTPServer):
    """Serves one file at /<repo>/resolve/main/<name> with the headers huggingface_hub reads (commit, ETag, size),
    1 MB every 0.15 s: a download the bar follows (it is redrawn at most every 0.1 s)."""

    def __init__(self, payload: bytes):
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.payload = payload

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the cancelled download hangs up mid-file
            super().handle_error(request, client_address)


class HubHandler(http.server.BaseHTTPRequestHandler):
    def _headers(self):
        if "/resolve/main/" not in self.path:
            self.send_error(404)
            return False
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.sha256(self.server.payload).hexdigest()}"')
        self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
        self.send_header("Content-Length", str(len(self.server.payload)))
        self.end_headers()
        return True

    def do_HEAD(self):
        self._headers()

    def do_GET(self):
        if self._headers():
            for first in range(0, len(self.server.payload), 1 << 20):
                self.wfile.write(self.server.payload[first:first + (1 << 20)])
                self.wfile.flush()
                time.sleep(0.15)

    def log_message(self, *args):
        pass


HUB_SCRIPT = textwrap.dedent("""
    import json, sys
    import huggingface_hub.constants
    huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE = 1 << 20  # several progress steps for a few MB
    import comfy.utils
    from comfy import model_management
    from nodes import model_loader
    cancel_at = int(sys.argv[1])
    bar = []
    def hook(value, total, preview, node_id=None):  # main.py's hook: the websocket message, here a list
        bar.append([value, total])
        if len(bar) == cancel_at:
            model_management.interrupt_current_processing()
    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        model = model_loader.load_cached(model_loader.HUB_CHOICE, "cpu", "fp32", "someone/audio2head",
                                         "audio2head.safetensors", "")
        result = {"config": model.models.config.image_size}
    except Exception as error:
        result = {"error": type(error).__name__}
    print(json.dumps({"bar": bar, **result}))
""")


def test_hub_download_progress_reaches_the_bar_and_cancel_stops_it(reduced_weights, tmp_path):
    """A local fake Hub (HF_ENDPOINT; no internet): the loader's download moves the node's progress bar byte by byte
    to the file size, and Cancel during the download stops it with ComfyUI's interrupt, not a download error."""
    payload = reduced_weights.read_bytes()
    hub = FakeHub(payload)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_address[1]}", "HF_HUB_OFFLINE": "0",
           "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "comfy_stub")])}
    try:
        results = []
        for cancel_at, cache in ((2, "hub-cancelled"), (0, "hub")):
            env["HF_HUB_CACHE"] = str(tmp_path / cache)
            run = subprocess.run([sys.executable, "-c", HUB_SCRIPT, str(cancel_at)], env=env, capture_output=True,
                                 text=True, timeout=300, cwd=tmp_path)
            assert run.returncode == 0, run.stderr[-3000:]
            results.append(json.loads(run.stdout.strip().splitlines()[-1]))
    finally:
        hub.shutdown()
    cancelled, complete = results
    assert cancelled["error"] == "InterruptProcessingException" and len(cancelled["bar"]) == 2
    size = len(payload)
    steps = [value for value, total in complete["bar"] if total == size]
    assert complete["config"] == 256 and len(steps) >= 3 and steps == sorted(steps) and steps[-1] == size
    print(f"\nHub download of {size} bytes: bar steps {steps}")
