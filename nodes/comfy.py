"""The few ComfyUI services the nodes use, imported lazily.

Inside ComfyUI these call `comfy.model_management`, `comfy.model_patcher.ModelPatcher`, `comfy.utils.ProgressBar`
and `folder_paths`. Outside it (plain Python) they fall back to the obvious behaviour: CPU, networks moved to their
device for a stage and back, no progress display, model files in the folder named by the environment variable
``AUDIO2HEAD_MODELS_DIR`` (default ``./models/audio2head``), inputs and outputs relative to the working directory.
Nothing here keeps per-node state.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from a2h_core.errors import Audio2HeadError

MODEL_FOLDER = "audio2head"  # models/<this> in ComfyUI's model tree
MODEL_EXTENSIONS = {".safetensors", ".pth", ".tar"}  # the original checkpoint is `*.pth.tar`


def _optional(module: str):
    """`module` when running inside ComfyUI, else None."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _model_management():
    return _optional("comfy.model_management")


def _folder_paths():
    return _optional("folder_paths")


# ---------------------------------------------------------------------------------------------- model files
def register_model_folder() -> None:
    """Register models/audio2head with folder_paths, keeping paths users added in extra_model_paths.yaml."""
    folder_paths = _folder_paths()
    if folder_paths is None:
        return
    default = os.path.join(folder_paths.models_dir, MODEL_FOLDER)
    paths, _ = folder_paths.folder_names_and_paths.get(MODEL_FOLDER, ([], set()))
    folder_paths.folder_names_and_paths[MODEL_FOLDER] = ([default] + [p for p in paths if p != default],
                                                         set(MODEL_EXTENSIONS))


def model_dirs() -> list[Path]:
    """Folders searched for weight files, the default one first."""
    folder_paths = _folder_paths()
    if folder_paths is None:
        return [Path(os.environ.get("AUDIO2HEAD_MODELS_DIR", os.path.join("models", MODEL_FOLDER)))]
    register_model_folder()
    return [Path(p) for p in folder_paths.get_folder_paths(MODEL_FOLDER)]


def list_model_files() -> list[str]:
    """Weight files under the model folders, as names relative to their folder (what the dropdown shows)."""
    folder_paths = _folder_paths()
    if folder_paths is not None:
        register_model_folder()
        return sorted(folder_paths.get_filename_list(MODEL_FOLDER))
    names = set()
    for folder in model_dirs():
        if folder.is_dir():
            names.update(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                         if p.is_file() and p.suffix in MODEL_EXTENSIONS)
    return sorted(names)


def check_relative_name(name, input_name: str, folder: str, fix: str = "pick a file listed in the dropdown") -> str:
    """`name` if it names a file inside a folder (no absolute path, no `..`); Audio2HeadError otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise Audio2HeadError(f"input '{input_name}': expected a file name, got {name!r}"[:200])
    parts = Path(name.replace("\\", "/")).parts
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise Audio2HeadError(f"input '{input_name}': {name!r} leaves {folder}; {fix}")
    return name


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies below it, after resolving links and `..`."""
    try:
        return os.path.commonpath([path.resolve(), folder.resolve()]) == str(folder.resolve())
    except ValueError:  # different drives
        return False


def model_file_path(name: str) -> Path | None:
    """Full path of a dropdown entry, or None when no model folder holds it. A name that leaves the model folders
    (absolute, or with `..`) is refused, inside ComfyUI as outside."""
    check_relative_name(name, "weights", f"models/{MODEL_FOLDER}")
    for folder in model_dirs():
        candidate = folder / name
        if candidate.is_file() and _inside(candidate.parent, folder):
            return candidate
    return None


FACE_FOLDER = "face_detection"  # models/<this>: yunet_final.pth (downloaded once) and optional mtcnn/ weights
FACE_EXTENSIONS = {".pth", ".pt", ".lz4"}


def face_models_dir() -> Path:
    """models/face_detection (registered with folder_paths), or $AUDIO2HEAD_FACE_MODELS_DIR outside ComfyUI (default
    ./models/face_detection). The YuNet detector is downloaded there once."""
    folder_paths = _folder_paths()
    if folder_paths is None:
        return Path(os.environ.get("AUDIO2HEAD_FACE_MODELS_DIR", os.path.join("models", FACE_FOLDER)))
    default = os.path.join(folder_paths.models_dir, FACE_FOLDER)
    paths, _ = folder_paths.folder_names_and_paths.get(FACE_FOLDER, ([], set()))
    folder_paths.folder_names_and_paths[FACE_FOLDER] = ([default] + [p for p in paths if p != default],
                                                        set(FACE_EXTENSIONS))
    return Path(default)


# ---------------------------------------------------------------------------------------------- devices
def load_device() -> torch.device:
    """The device ComfyUI computes on (`get_torch_device`), CPU outside ComfyUI."""
    mm = _model_management()
    return mm.get_torch_device() if mm is not None else torch.device("cpu")


def offload_device() -> torch.device:
    """Where models wait between runs: ComfyUI's offload device (CPU unless high-VRAM mode)."""
    mm = _model_management()
    return mm.unet_offload_device() if mm is not None else torch.device("cpu")


def auto_dtype(device: torch.device) -> torch.dtype:
    """bf16 or fp16 where ComfyUI says the device runs them well, else fp32 (always fp32 on CPU)."""
    mm = _model_management()
    if mm is None or device.type == "cpu":
        return torch.float32
    if mm.should_use_bf16(device, prioritize_performance=True):
        return torch.bfloat16
    if mm.should_use_fp16(device, prioritize_performance=True):
        return torch.float16
    return torch.float32


def dtype_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether `dtype` is usable on a GPU `device`: what ComfyUI reports (CPUs follow a2h_core.device's rule)."""
    if dtype == torch.float32:
        return True
    mm = _model_management()
    if mm is None:
        return True
    if dtype == torch.bfloat16:
        return mm.should_use_bf16(device, prioritize_performance=False)
    return mm.should_use_fp16(device, prioritize_performance=False)


def soft_empty_cache() -> None:
    mm = _model_management()
    if mm is not None:
        mm.soft_empty_cache()


# ---------------------------------------------------------------------------------------------- model management
class LocalModel:
    """Outside ComfyUI: the networks with the device they compute on and the one they rest on (the three attributes
    of ComfyUI's ModelPatcher that the pack reads)."""

    def __init__(self, model: torch.nn.Module, load_device: torch.device, offload_device: torch.device):
        self.model, self.load_device, self.offload_device = model, load_device, offload_device


def managed_model(model: torch.nn.Module, load_device: torch.device, offload_device: torch.device,
                  on_unload: Callable[[object], None] | None = None):
    """`model` wrapped the way ComfyUI wraps its own models, in a `comfy.model_patcher.ModelPatcher`, so that its
    model management sees it: it loads the networks for a stage (`model_on_device`), offloads them when another model
    needs the memory, and unloads them for "Unload models" and `/free`. `on_unload(patcher)` is called when ComfyUI
    unloads the model completely. Outside ComfyUI: a `LocalModel`."""
    model_patcher = _optional("comfy.model_patcher")
    if model_patcher is None:
        return LocalModel(model, load_device, offload_device)
    patcher = model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)
    if on_unload is not None:
        on_detach = importlib.import_module("comfy.patcher_extension").CallbacksMP.ON_DETACH
        # unpatch_all is False only when ComfyUI swaps a model for a clone of itself, which is no unload
        patcher.add_callback(on_detach, lambda unloaded, unpatch_all: on_unload(unloaded) if unpatch_all else None)
    return patcher


@contextlib.contextmanager
def model_on_device(managed):
    """The networks of a `managed_model` on their load device for one stage.

    Inside ComfyUI, `load_models_gpu` puts them there, first unloading or offloading other models if memory is
    short, and they stay until ComfyUI needs the memory, as core models do. They are loaded whole
    (`force_full_load`): the networks are plain torch modules, which cannot compute with part of their weights left
    on the offload device. Outside ComfyUI they move there for the stage and back after it."""
    if isinstance(managed, LocalModel):
        moved = managed.load_device != managed.offload_device
        if moved:
            managed.model.to(managed.load_device)
        try:
            yield managed.model
        finally:
            if moved:
                managed.model.to(managed.offload_device)
                soft_empty_cache()
        return
    _model_management().load_models_gpu([managed], force_full_load=True)
    yield managed.model


# ---------------------------------------------------------------------------------------------- progress
BAR_UPDATE_SECONDS = 0.1  # the bar is redrawn at most this often (each redraw is a websocket message)


def check_interrupted() -> None:
    """A cancel point: inside ComfyUI, raises its InterruptProcessingException once the user pressed Cancel."""
    mm = _model_management()
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


class Progress:
    """Counts work units; inside ComfyUI it drives the node's progress bar. Every call is a cancel point."""

    def __init__(self, total: int):
        utils = _optional("comfy.utils")
        self.total = max(int(total), 1)
        self.done = 0
        self._bar = utils.ProgressBar(self.total) if utils is not None else None
        self._drawn_at = -math.inf

    def __call__(self, done: int, total: int | None = None) -> None:
        """Progress callback for `a2h_core`: `done` of `total` units finished. Raises on Cancel (the library's
        loops call it often, so that Cancel stops them within a fraction of a second)."""
        check_interrupted()
        if total is not None:
            self.total = max(int(total), 1)
        self.done = min(int(done), self.total)
        now = time.monotonic()
        if self._bar is not None and (self.done == self.total or now - self._drawn_at >= BAR_UPDATE_SECONDS):
            self._drawn_at = now
            self._bar.update_absolute(self.done, self.total)

    def step(self, count: int = 1) -> None:
        self(self.done + count)


# ---------------------------------------------------------------------------------------------- folders
def input_directory() -> Path:
    folder_paths = _folder_paths()
    return Path(folder_paths.get_input_directory()) if folder_paths is not None else Path.cwd()


PACK_EXAMPLES = Path(__file__).resolve().parent.parent / "workflows"  # example curve files shipped with the pack
EXAMPLE_PREFIX = "example_"  # only files named example_*.json / example_*.csv there are offered


def example_files(suffixes: tuple[str, ...]) -> dict[str, Path]:
    """The pack's example files with these endings, by name."""
    if not PACK_EXAMPLES.is_dir():
        return {}
    return {p.name: p for p in sorted(PACK_EXAMPLES.iterdir())
            if p.is_file() and p.name.startswith(EXAMPLE_PREFIX) and p.suffix.lower() in suffixes}


def list_input_files(suffixes: tuple[str, ...]) -> list[str]:
    """Files in ComfyUI's input folder (top level, as core Load Audio lists them) with these endings, then the
    pack's examples that the input folder does not shadow."""
    folder = input_directory()
    try:
        names = sorted(entry.name for entry in os.scandir(folder)
                       if entry.is_file() and Path(entry.name).suffix.lower() in suffixes)
    except OSError:
        names = []
    return names + [name for name in example_files(suffixes) if name not in names]


def resolve_input_file(name: str, suffixes: tuple[str, ...], input_name: str) -> Path:
    """The file a combo entry names: inside ComfyUI's input folder, else one of the pack's examples. Nothing else is
    ever read: absolute names, `..` and links leading out of the input folder are refused."""
    check_relative_name(name, input_name, "ComfyUI's input folder")
    if Path(name).suffix.lower() not in suffixes:
        raise Audio2HeadError(f"input '{input_name}': {name!r} is not a {' or '.join(suffixes)} file")
    folder = input_directory()
    candidate = folder / name
    if candidate.is_file():
        if not _inside(candidate, folder):
            raise Audio2HeadError(f"input '{input_name}': {name!r} links outside ComfyUI's input folder; copy the "
                                  "file itself into the input folder")
        return candidate
    example = example_files(suffixes).get(name)
    if example is not None:
        return example
    raise Audio2HeadError(f"input '{input_name}': {name!r} does not exist in ComfyUI's input folder ({folder}); "
                          "upload it with the node's button or copy it there")


def temp_directory() -> Path:
    """ComfyUI's temp folder (emptied when the server starts); outside ComfyUI $AUDIO2HEAD_TEMP_DIR, default the
    system's temporary folder."""
    folder_paths = _folder_paths()
    if folder_paths is not None:
        return Path(folder_paths.get_temp_directory())
    return Path(os.environ.get("AUDIO2HEAD_TEMP_DIR") or tempfile.gettempdir())


def output_directory() -> Path:
    folder_paths = _folder_paths()
    return Path(folder_paths.get_output_directory()) if folder_paths is not None else Path.cwd()


def next_output_path(prefix: str, extension: str) -> tuple[Path, str]:
    """A new file `<output>/<prefix>_NNNNN_.<extension>` (ComfyUI's naming) and its name relative to the output.

    A prefix that would leave the output folder (absolute, or with `..`) is refused with a message, before
    ComfyUI's own check (which raises a bare Exception) and outside ComfyUI alike."""
    out_dir = output_directory()
    check_relative_name(prefix, "filename_prefix", "the output folder",
                        "give a name relative to it, such as 'audio2head/pose'")
    if not _inside(out_dir / prefix, out_dir):
        raise Audio2HeadError(f"input 'filename_prefix': {prefix!r} leaves the output folder")
    folder_paths = _folder_paths()
    if folder_paths is not None:
        full_folder, filename, counter, _subfolder, _ = folder_paths.get_save_image_path(prefix, str(out_dir))
        path = Path(full_folder) / f"{filename}_{counter:05}_.{extension}"
    else:
        base = out_dir / prefix
        counter = 1
        while base.parent.joinpath(f"{base.name}_{counter:05}_.{extension}").exists():
            counter += 1
        path = base.parent / f"{base.name}_{counter:05}_.{extension}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.relative_to(out_dir).as_posix()
