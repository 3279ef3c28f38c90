"""The ComfyUI nodes, called directly with ComfyUI-typed values, without ComfyUI installed.

Outside ComfyUI the nodes import tests/comfy_stub, a small test double of `comfy_api.latest` (pytest.ini puts it on
the path). Models are random reduced-width networks saved as safetensors (conftest's `reduced_weights`).
"""
import asyncio
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import nodes
from a2h_core.config import FPS, ModelConfig
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.modules.keypoints import Keypoints
from nodes import model_loader

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

NODE_IDS = [
    "Audio2HeadModelLoader", "Audio2HeadAudioFeatures", "Audio2HeadPosePredictor", "Audio2HeadPoseLoad",
    "Audio2HeadPoseSave", "Audio2HeadPoseKeyframes", "Audio2HeadPoseEdit", "Audio2HeadPoseRetime",
    "Audio2HeadPoseBlend", "Audio2HeadStillHead", "Audio2HeadPoseFromVideo", "Audio2HeadPosePlot",
    "Audio2HeadPoseBoxes",
    "Audio2HeadKeypointDetector", "Audio2HeadMotionField", "Audio2HeadGenerator", "Audio2HeadCrop",
    "Audio2HeadPasteBack", "Audio2HeadKeypointOverlay", "Audio2HeadAllInOne", "Audio2HeadPersonalize",
]


def by_id(node_id):
    return next(cls for cls in nodes.NODE_CLASSES if cls.GET_SCHEMA().node_id == node_id)


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def model(weights, run_node):
    return run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="fp32")[0]


# ------------------------------------------------------------------------------------------------------ registration
def load_pack_like_comfyui():
    """Import the repository root as ComfyUI does: a package named after its folder path, run from __init__.py."""
    spec = importlib.util.spec_from_file_location("custom_nodes_audio2head", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_pack_exports_v3_entrypoint_and_web_directory():
    pack = load_pack_like_comfyui()
    assert not hasattr(pack, "NODE_CLASS_MAPPINGS"), "ComfyUI would ignore comfy_entrypoint"
    assert (ROOT / pack.WEB_DIRECTORY).is_dir()
    extension = asyncio.run(pack.comfy_entrypoint())
    node_list = asyncio.run(extension.get_node_list())
    assert [cls.GET_SCHEMA().node_id for cls in node_list] == NODE_IDS


@pytest.mark.parametrize("node_cls", nodes.NODE_CLASSES, ids=lambda cls: cls.__name__)
def test_schema_is_complete_and_matches_execute(node_cls, weights):
    schema = node_cls.GET_SCHEMA()
    assert schema.node_id == node_cls.__name__
    assert schema.display_name.startswith("Audio2Head")
    assert schema.category.split("/")[0] == "Audio2Head"
    assert schema.description
    for item in schema.inputs:
        assert item.tooltip, f"{schema.node_id}.{item.id} has no tooltip"
    for item in schema.outputs:
        assert item.tooltip, f"{schema.node_id} output {item.display_name} has no tooltip"
    # ComfyUI calls execute(**inputs): parameter names must be the input ids; optional inputs need defaults.
    parameters = inspect.signature(node_cls.execute).parameters
    assert list(parameters) == [item.id for item in schema.inputs]
    for item in schema.inputs:
        has_default = parameters[item.id].default is not inspect.Parameter.empty
        assert has_default == bool(item.optional), f"{schema.node_id}.{item.id}"
    info = node_cls.GET_NODE_INFO_V1()  # the /object_info entry the frontend builds widgets from
    assert info["name"] == schema.node_id and len(info["output"]) == len(schema.outputs)


def test_node_ids_do_not_collide_with_core_nodes():
    core = json.loads((TESTS / "data" / "comfyui_core_nodes.json").read_text())["object_info"]
    assert not set(NODE_IDS) & set(core)
    assert len(set(NODE_IDS)) == len(NODE_IDS)


def test_keyframes_node_has_the_json_widget_the_web_editor_edits():
    info = by_id("Audio2HeadPoseKeyframes").GET_NODE_INFO_V1()
    io_type, options = info["input"]["required"]["keyframes"]
    assert io_type == "STRING" and options.get("multiline")


# ------------------------------------------------------------------------------------------------------ model loader
def test_loader_lists_files_and_caches_the_model(weights, reduced_weights, run_node):
    info = by_id("Audio2HeadModelLoader").GET_NODE_INFO_V1()
    assert weights in info["input"]["required"]["weights"][1]["options"]
    first = run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="fp32")[0]
    again = run_node("Audio2HeadModelLoader", weights=weights, device="auto", dtype="auto")[0]
    assert again.models is first.models  # outside ComfyUI "auto" is the CPU in fp32: same cache entry
    assert first.models.config == ModelConfig.reduced()
    path = reduced_weights
    loader = by_id("Audio2HeadModelLoader")
    before = loader.fingerprint_inputs(weights=weights, device="cpu", dtype="fp32")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a replaced file is loaded again
    assert loader.fingerprint_inputs(weights=weights, device="cpu", dtype="fp32") != before
    assert run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="fp32")[0].models is not first.models


def test_bf16_compute_keeps_float32_weights_and_close_results(weights, run_node, comfy_image, monkeypatch):
    import a2h_core.device
    monkeypatch.setattr(a2h_core.device, "cpu_has_native_bf16", lambda: True)  # numbers, not speed, are tested here
    model = run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="fp32")[0]
    low = run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="bf16")[0]
    assert low.dtype == torch.bfloat16 and low.models is model.models  # one cached copy of the weights
    assert next(low.models.parameters()).dtype == torch.float32  # autocast lowers the compute, not the weights
    image = comfy_image()
    exact = run_node("Audio2HeadKeypointDetector", model=model, image=image)[0]
    approx = run_node("Audio2HeadKeypointDetector", model=low, image=image)[0]
    assert approx.value.dtype == torch.float32
    assert 0 < float((exact.value - approx.value).abs().max()) < 0.05


def test_outside_comfyui_models_visit_the_load_device_per_stage_and_go_back(weights, monkeypatch, run_node,
                                                                            comfy_image):
    """Without ComfyUI's model management (plain Python), each stage moves the networks to the load device and back,
    then empties the cache, also when the stage fails. Simulated with two CPU devices. (Inside ComfyUI the model
    management decides: tests/test_model_management.py.)"""
    fake = type(sys)("comfy.model_management")
    fake.get_torch_device = lambda: torch.device("cpu", 0)
    fake.unet_offload_device = lambda: torch.device("cpu")
    fake.soft_empty_cache = lambda: calls.append("empty")
    calls = []
    monkeypatch.setattr(model_loader.comfy, "_model_management", lambda: fake)
    real_optional = model_loader.comfy._optional
    monkeypatch.setattr(model_loader.comfy, "_optional",
                        lambda name: None if name == "comfy.model_patcher" else real_optional(name))
    model = run_node("Audio2HeadModelLoader", weights=weights, device="auto", dtype="auto")[0]
    assert isinstance(model.managed, model_loader.comfy.LocalModel)
    assert (model.load_device, model.offload_device, model.dtype) == (torch.device("cpu", 0), torch.device("cpu"),
                                                                       torch.float32)
    calls.clear()  # loading emptied the cache once
    moves = []
    monkeypatch.setattr(type(model.models), "to", lambda self, device: moves.append(device) or self)
    run_node("Audio2HeadKeypointDetector", model=model, image=comfy_image())
    assert moves[0] == torch.device("cpu", 0) and moves[-1] == torch.device("cpu") and calls == ["empty"]
    moves.clear()
    with pytest.raises(RuntimeError, match="stage failed"), model.wrapper():
        raise RuntimeError("stage failed")
    assert moves[0] == torch.device("cpu", 0) and moves[-1] == torch.device("cpu") and len(calls) == 2


def test_fp16_on_cpu_is_refused_by_name(weights, run_node):
    with pytest.raises(Audio2HeadError, match="input 'dtype': fp16"):
        run_node("Audio2HeadModelLoader", weights=weights, device="cpu", dtype="fp16")


def test_missing_model_file_says_where_to_put_it(weights, run_node, reduced_weights):
    with pytest.raises(Audio2HeadError, match=r"input 'weights'.*not found.*audio2head"):
        run_node("Audio2HeadModelLoader", weights="nope.safetensors", device="cpu", dtype="fp32")
    # ComfyUI validates a prompt before running it: a shared workflow naming a file this ComfyUI lacks gets the same
    # message (file, folder, download command) instead of a bare "value not in list".
    for node in ("Audio2HeadModelLoader", "Audio2HeadAllInOne"):
        message = by_id(node).validate_inputs(weights="nope.safetensors")
        assert "'nope.safetensors' not found" in message and str(reduced_weights.parent) in message
        assert f"a2h_core download --to {reduced_weights.parent}" in message
        assert by_id(node).validate_inputs(weights=weights) is True
        assert by_id(node).validate_inputs(weights=model_loader.HUB_CHOICE) is True
        assert "leaves" in by_id(node).validate_inputs(weights="../secret.safetensors")


def test_hub_choice_needs_a_repo_id(weights, run_node):
    with pytest.raises(Audio2HeadError, match="hub_repo_id"):
        run_node("Audio2HeadModelLoader", weights=model_loader.HUB_CHOICE, device="cpu", dtype="fp32",
                 hub_repo_id=" ")


# ------------------------------------------------------------------------------------------------------ audio
def test_audio_features_node_outputs_features_frames_and_plot(run_node, comfy_audio):
    out = run_node("Audio2HeadAudioFeatures", audio=comfy_audio(seconds=1.3))
    features, frames, fps = out.args
    assert frames == features.num_frames == len(features.values) // 4
    assert 30 <= frames <= 33 and fps == FPS  # 1.3 s at 25 fps
    assert features.values.shape[1] == 41
    assert "images" in out.ui.as_dict()


def test_audio_shorter_than_one_frame_names_the_input(run_node, comfy_audio):
    with pytest.raises(Audio2HeadError, match=r"input 'audio'.*"):
        run_node("Audio2HeadAudioFeatures", audio=comfy_audio(seconds=0.02))


def test_audio_batch_uses_first_clip_with_a_warning(run_node, comfy_audio):
    single = comfy_audio(seconds=0.5, channels=1)
    batch = {"waveform": torch.cat([single["waveform"], torch.zeros_like(single["waveform"])]),
             "sample_rate": single["sample_rate"]}
    with pytest.warns(A2HWarning, match="first"):
        features = run_node("Audio2HeadAudioFeatures", audio=batch)[0]
    np.testing.assert_array_equal(features.values, run_node("Audio2HeadAudioFeatures", audio=single)[0].values)


# ------------------------------------------------------------------------------------------------------ pipeline
def test_stage_by_stage_graph_matches_the_all_in_one_node(model, weights, run_node, comfy_image, comfy_audio):
    """Loader -> features -> predictor -> detector -> motion field -> generator gives the frames of the all-in-one
    node, which runs the library's end-to-end pipeline (a2h_core.inference.pipeline.generate) on the same cached
    networks: the same pose curve exactly, the same frames up to the generator's batch size."""
    image, audio = comfy_image(), comfy_audio(seconds=0.5)
    features = run_node("Audio2HeadAudioFeatures", audio=audio)[0]
    predicted = run_node("Audio2HeadPosePredictor", model=model, image=image, features=features)
    pose = predicted[0]
    assert len(pose.values) == features.num_frames + 1
    payload = predicted.ui["a2h_pose"][0]
    assert payload["fps"] == FPS and len(payload["yaw"]) == len(pose.values)
    np.testing.assert_allclose(payload["pitch"], pose.to_ypr()[:, 1], atol=1e-3)
    kp_source = run_node("Audio2HeadKeypointDetector", model=model, image=image)[0]
    kp_driving = run_node("Audio2HeadMotionField", model=model, image=image, features=features, pose=pose)[0]
    assert len(kp_source) == 1 and len(kp_driving) == features.num_frames
    frames, fps, _ = run_node("Audio2HeadGenerator", model=model, image=image, source_keypoints=kp_source,
                              driving_keypoints=kp_driving, batch_size=4).args
    assert fps == FPS and frames.dtype == torch.float32
    assert frames.shape == (features.num_frames, 256, 256, 3)
    assert float(frames.std()) > 0

    aio = run_node("Audio2HeadAllInOne", image=image, audio=audio, weights=weights, device="cpu", dtype="fp32",
                   batch_size=3, crop="none", paste_back=True, detector="auto")
    assert aio[1] == FPS and aio[2] is audio
    np.testing.assert_array_equal(aio[3].values, pose.values)  # the same instance on the same input
    # Batches of 3 and of 4 frames may take different CPU convolution kernels: the float32 prediction then differs in
    # its last bits, which moves a truncated uint8 value by one step (1/255) here and there.
    difference = (aio[0] - frames).abs()
    assert aio[0].shape == frames.shape and float(difference.max()) <= 1 / 255 + 1e-6
    assert float((difference > 0).float().mean()) <= 0.02
    overlay = run_node("Audio2HeadKeypointOverlay", images=frames[:4], keypoints=kp_driving[:4], radius=2)[0]
    assert overlay.shape == frames[:4].shape and not torch.equal(overlay, frames[:4])


def test_image_batch_uses_first_image_with_a_warning(model, run_node, comfy_image):
    batch = comfy_image(batch=2)
    with pytest.warns(A2HWarning, match="first"):
        kp_batch = run_node("Audio2HeadKeypointDetector", model=model, image=batch)[0]
    kp_first = run_node("Audio2HeadKeypointDetector", model=model, image=batch[:1])[0]
    assert torch.equal(kp_batch.value, kp_first.value)  # the same instance on the same one image: exact


def test_cancel_through_the_progress_bar_stops_generation(model, monkeypatch, run_node, comfy_image):
    """Inside ComfyUI ProgressBar.update raises InterruptProcessingException on Cancel; the node must let it out."""
    class Interrupted(Exception):
        pass

    class CancellingBar:  # ComfyUI's ProgressBar after the user pressed Cancel
        def __init__(self, total):
            pass

        def update_absolute(self, value, total=None, preview=None):
            raise Interrupted()

    image = comfy_image()
    kp_source = run_node("Audio2HeadKeypointDetector", model=model, image=image)[0]
    fake_utils = type(sys)("comfy.utils")
    fake_utils.ProgressBar = CancellingBar
    monkeypatch.setitem(sys.modules, "comfy", type(sys)("comfy"))
    monkeypatch.setitem(sys.modules, "comfy.utils", fake_utils)
    passes = []
    hook = model.models.generator.register_forward_hook(lambda *args: passes.append(1))
    try:
        with pytest.raises(Interrupted):
            run_node("Audio2HeadGenerator", model=model, image=image, source_keypoints=kp_source,
                     driving_keypoints=Keypoints.cat([kp_source] * 40), batch_size=4)
    finally:
        hook.remove()
    assert len(passes) == 1  # stopped after the first batch of 4, not after all 40 frames


# ------------------------------------------------------------------------------------------------------ crop
def test_crop_and_paste_back(model, run_node, comfy_image):
    picture = comfy_image(height=181, width=240)
    manual = {"mode": "manual", "detector": "auto", "face_index": 0, "crop_scale": 3.8, "crop_offset": -0.5}
    face, crop, preview = run_node("Audio2HeadCrop", image=picture, **manual, x=40, y=20, width=150, height=150).args
    assert preview.shape == (1, 181, 240, 3)
    assert face.shape == (1, 256, 256, 3)
    frames = comfy_image(height=256, width=256, batch=3, seed=5)
    pasted, mask = run_node("Audio2HeadPasteBack", frames=frames, crop=crop, feather=0.1).args
    assert pasted.shape == (3, 180, 240, 3)  # cut to even sides for H.264
    assert mask.shape == (1, 180, 240)
    assert float(mask[0, 95, 115]) == 1.0 and float(mask[0, 5, 5]) == 0.0
    outside = mask[0] == 0
    assert torch.equal(pasted[:, outside], picture[:, :180, :240][:, outside].expand(3, -1, -1))
    with pytest.raises(Audio2HeadError, match=r"x, y, width, height.*entirely outside"):
        run_node("Audio2HeadCrop", image=picture, **manual, x=300, y=0, width=100, height=100)
