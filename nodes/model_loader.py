"""Audio2Head model loader: weights from models/audio2head or the Hugging Face Hub, under ComfyUI's model management.

The networks are wrapped in ComfyUI's ModelPatcher (`comfy.managed_model`), as core models are: "Unload models",
`/free` and low-VRAM offloading reach them. The pack keeps no copy ComfyUI cannot release: loaded networks are found
again only while something holds them (a loader's cached output, or the most recent networks, kept for the
all-in-one node until ComfyUI unloads them).

The authors' checkpoint can be fetched from their Google Drive link, but only when the user picks that entry of the
weights list (DOWNLOAD_CHOICE): nothing is ever downloaded silently."""
from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch
from comfy_api.latest import io

from a2h_core.device import check_compute_dtype, parse_dtype
from a2h_core.errors import Audio2HeadError
from a2h_core.inference.wrapper import Audio2HeadWrapper
from a2h_core.io.download import TERMS_NOTE, download_checkpoint
from a2h_core.io.weights import DEFAULT_FILENAME, ORIGINAL_FILENAME, load_models
from a2h_core.modules.models import Audio2HeadModels

from . import comfy
from .common import CATEGORY, blame
from .types import A2HModel

HUB_CHOICE = "(Hugging Face Hub: repo id below)"  # last dropdown entry; selects hub loading
NO_FILES_CHOICE = "(no files in models/audio2head)"  # shown when the folder is empty
DOWNLOAD_CHOICE = "(download audio2head.pth.tar from the authors' Google Drive)"  # explicit, never implied


def _download_hint() -> str:
    folder = comfy.model_dirs()[0]
    return (f"choose the entry {DOWNLOAD_CHOICE!r} to fetch the authors' checkpoint into {folder}, or run: python -m "
            f"a2h_core download --to {folder}")


def _downloaded_weights() -> Path:
    """models/audio2head/audio2head.safetensors, downloaded and converted first if missing (the user chose so)."""
    folder = comfy.model_dirs()[0]
    converted = folder / DEFAULT_FILENAME
    if converted.is_file():
        return converted
    logging.warning("Audio2Head: %s", TERMS_NOTE)
    progress = comfy.Progress(1)
    with blame("weights"):
        return download_checkpoint(folder, progress=lambda done, total: progress(done, total or max(done, 1)),
                                   log=lambda message: logging.info("Audio2Head: %s", message))


@dataclass(frozen=True)
class LoadedModels:
    """The A2H_MODEL socket value: the networks in ComfyUI's model management, and how they compute."""

    managed: object  # the eval-mode Audio2HeadModels in a ModelPatcher (comfy.managed_model): load/offload devices
    dtype: torch.dtype  # compute dtype
    source: str  # file path or hub id, for messages

    @property
    def models(self) -> Audio2HeadModels:
        return self.managed.model

    @property
    def load_device(self) -> torch.device:
        """Device the stage nodes compute on."""
        return self.managed.load_device

    @property
    def offload_device(self) -> torch.device:
        """Device the weights go to when ComfyUI unloads or offloads them."""
        return self.managed.offload_device

    @contextlib.contextmanager
    def on_device(self):
        """The networks on the load device for the duration of a stage (see `comfy.model_on_device`)."""
        with _DEVICE_LOCK, comfy.model_on_device(self.managed) as models:
            yield models

    @contextlib.contextmanager
    def wrapper(self):
        """An Audio2HeadWrapper computing on the load device in the chosen dtype (see `on_device`); Cancel is checked
        inside each network pass too."""
        with self.on_device() as models:
            yield Audio2HeadWrapper(models, device=self.load_device, dtype=self.dtype,
                                    check_cancel=comfy.check_interrupted)


_DEVICE_LOCK = threading.RLock()  # one stage at a time moves a model between devices
# (source, hub file, revision, mtime, load device, offload device) -> managed networks, while anything holds them
_LOADED: weakref.WeakValueDictionary[tuple, object] = weakref.WeakValueDictionary()
_RECENT: list = []  # the most recently used managed networks, until ComfyUI unloads them (for the all-in-one node)


def _forget(managed) -> None:
    """ComfyUI unloaded these networks ("Unload models", /free, or memory needed elsewhere): hold them no longer."""
    if managed in _RECENT:
        _RECENT.remove(managed)


def managed_networks(models: Audio2HeadModels, load_device: torch.device, offload_device: torch.device):
    """Networks handed to ComfyUI's model management (see `comfy.managed_model`)."""
    return comfy.managed_model(models, load_device, offload_device, on_unload=_forget)


def _resolve_device(choice: str) -> torch.device:
    return torch.device("cpu") if choice == "cpu" else comfy.load_device()


def _resolve_dtype(choice: str, device: torch.device) -> torch.dtype:
    if choice == "auto":
        return comfy.auto_dtype(device)
    if device.type == "cpu":  # the library's one rule for reduced precision on a CPU (a2h_core.device)
        return check_compute_dtype(device, choice, "input 'dtype':")
    dtype = parse_dtype(choice)
    if not comfy.dtype_supported(device, dtype):
        raise Audio2HeadError(f"input 'dtype': {choice} is not supported on {device}; choose auto or fp32")
    return dtype


def load_cached(weights: str, device_choice: str = "auto", dtype_choice: str = "auto", hub_repo_id: str = "",
                hub_filename: str = "", hub_revision: str = "") -> LoadedModels:
    """Load the networks for a loader's settings, or reuse them while something holds them (see the module
    docstring: the pack itself holds only the most recent ones, until ComfyUI unloads them).

    Weights stay float32; a lower compute dtype runs under autocast (see Audio2HeadWrapper). A Hub download shows
    its progress on the node's bar.
    """
    device = _resolve_device(device_choice)
    dtype = _resolve_dtype(dtype_choice, device)
    offload = device if device_choice == "cpu" else comfy.offload_device()
    hub_args = {}
    if weights == HUB_CHOICE:
        if not hub_repo_id.strip():
            raise Audio2HeadError("input 'hub_repo_id': empty; give an 'owner/name' Hugging Face repo id, or pick a "
                                  f"file in 'weights' (put weight files in {comfy.model_dirs()[0]})")
        source: str | Path = hub_repo_id.strip()
        hub_args = {"filename": hub_filename.strip() or None, "revision": hub_revision.strip() or None}
        key = (source, hub_args["filename"], hub_args["revision"], None, device, offload)
    elif weights == DOWNLOAD_CHOICE:
        source = _downloaded_weights()
        key = (str(source.resolve()), None, None, source.stat().st_mtime_ns, device, offload)
    else:
        path = comfy.model_file_path(weights)
        if path is None:
            raise Audio2HeadError(missing_weights_message(weights))
        source = path
        key = (str(path.resolve()), None, None, path.stat().st_mtime_ns, device, offload)
    managed = _LOADED.get(key)
    if managed is None:
        _RECENT.clear()  # the previous networks may go before these are read
        comfy.soft_empty_cache()
        if hub_args:
            hub_args["download_progress"] = comfy.Progress(1)  # bytes; the Hub reports the size with the first chunk
        with blame("weights"):
            models = load_models(source, device=offload, dtype=torch.float32, **hub_args)
        managed = _LOADED[key] = managed_networks(models, device, offload)
    _RECENT[:] = [managed]
    return LoadedModels(managed, dtype, str(source))


def missing_weights_message(weights: str) -> str:
    """What to do when the dropdown entry `weights` names no file: the file, the folder and the download command."""
    folder = comfy.model_dirs()[0]
    if weights == NO_FILES_CHOICE:
        return (f"input 'weights': no weight files in {folder}. Put the original {ORIGINAL_FILENAME} (or a converted "
                ".safetensors) there and refresh the page (press R), or choose the Hugging Face Hub entry and give a "
                f"repo id, or {_download_hint()}")
    return (f"input 'weights': model file '{weights}' not found. Put the Audio2Head weights (the original "
            f"audio2head.pth.tar or a converted .safetensors) in {folder} and refresh, or choose the Hugging Face Hub "
            f"entry and give a repo id, or {_download_hint()}")


def validate_weights(weights) -> bool | str:
    """ComfyUI's `validate_inputs` for a weights dropdown: True, or the message naming the missing file, the folder
    and the download command. It replaces ComfyUI's bare "value not in list" when a shared workflow names a file
    this ComfyUI lacks."""
    if weights in (DOWNLOAD_CHOICE, HUB_CHOICE):
        return True
    try:
        found = comfy.model_file_path(weights) is not None
    except Audio2HeadError as error:
        return str(error)
    return True if found else missing_weights_message(weights)


def weight_choices() -> list[str]:
    files = comfy.list_model_files()
    return (files or [NO_FILES_CHOICE]) + [DOWNLOAD_CHOICE, HUB_CHOICE]


def weights_input() -> io.Combo.Input:
    """The weights dropdown, shared with the all-in-one node."""
    return io.Combo.Input(
        "weights", options=weight_choices(),
        tooltip="Weight file in ComfyUI/models/audio2head (the original audio2head.pth.tar is converted to "
                ".safetensors on first use and cached beside it); the Google Drive entry downloads the authors' "
                "checkpoint into that folder (once; their terms apply: the checkpoint has no licence file); or the "
                "Hub entry to download hub_repo_id.")


def device_inputs() -> list:
    return [
        io.Combo.Input("device", options=["auto", "cpu"], default="auto",
                       tooltip="auto: ComfyUI's compute device (GPU when available); the weights rest on ComfyUI's "
                               "offload device between runs. cpu: always run on the CPU."),
        io.Combo.Input("dtype", options=["auto", "fp32", "fp16", "bf16"], default="auto",
                       tooltip="Compute precision. auto: fp32 on CPU; on a GPU bf16 or fp16 where ComfyUI reports "
                               "the device supports them."),
    ]


def hub_inputs() -> list:
    return [
        io.String.Input("hub_repo_id", default="", optional=True,
                        tooltip="Hugging Face repo 'owner/name' holding the weights; used when 'weights' is the "
                                "Hub entry. Downloads go to the Hugging Face cache; HF_HUB_OFFLINE is honoured."),
        io.String.Input("hub_filename", default="audio2head.safetensors", optional=True,
                        tooltip="File inside the Hub repo."),
        io.String.Input("hub_revision", default="", optional=True,
                        tooltip="Branch, tag or commit of the Hub repo (empty: main)."),
    ]


class Audio2HeadModelLoader(io.ComfyNode):
    """Loads the four Audio2Head networks once; later runs with the same settings reuse them."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="Audio2HeadModelLoader",
            display_name="Audio2Head Model Loader",
            category=f"{CATEGORY}/loaders",
            description="Loads the Audio2Head networks (pose predictor, motion field generator, keypoint detector, "
                        "generator) from models/audio2head or the Hugging Face Hub.",
            inputs=[weights_input(), *device_inputs(), *hub_inputs()],
            outputs=[A2HModel.Output(display_name="model", tooltip="The loaded Audio2Head networks.")],
        )

    @classmethod
    def fingerprint_inputs(cls, weights, **settings):
        """A replaced weight file (new modification time) runs the node again instead of reusing its output."""
        try:
            path = comfy.model_file_path(weights)
        except Audio2HeadError:
            return weights
        return path.stat().st_mtime_ns if path is not None else weights

    @classmethod
    def validate_inputs(cls, weights):
        return validate_weights(weights)

    @classmethod
    def execute(cls, weights, device, dtype, hub_repo_id="", hub_filename="", hub_revision="") -> io.NodeOutput:
        return io.NodeOutput(load_cached(weights, device, dtype, hub_repo_id, hub_filename, hub_revision))
