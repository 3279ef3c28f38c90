"""The few ComfyUI services the nodes use, imported lazily.

Inside ComfyUI these call `comfy.model_management`, `comfy.utils.ProgressBar` and `folder_paths`. Outside it (CI,
plain Python) they fall back to the obvious behaviour: CPU, no progress display, model files in the folder named by
the environment variable ``AUDIO2HEAD_MODELS_DIR`` (default ``./models/audio2head``), inputs and outputs relative
to the working directory. Nothing here keeps per-node state.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch

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


def model_file_path(name: str) -> Path | None:
    """Full path of a dropdown entry, or None when no model folder holds it."""
    for folder in model_dirs():
        candidate = folder / name
        if candidate.is_file():
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
    """Whether `dtype` is usable on `device`: fp32 always; on the CPU also bf16; on a GPU what ComfyUI reports."""
    if dtype == torch.float32:
        return True
    if device.type == "cpu":
        return dtype == torch.bfloat16
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


# ---------------------------------------------------------------------------------------------- progress
class Progress:
    """Counts work units; inside ComfyUI it drives the node's progress bar, whose update raises on Cancel."""

    def __init__(self, total: int):
        utils = _optional("comfy.utils")
        self.total = max(int(total), 1)
        self.done = 0
        self._bar = utils.ProgressBar(self.total) if utils is not None else None

    def __call__(self, done: int, total: int | None = None) -> None:
        """Progress callback for `a2h_core`: `done` of `total` units finished."""
        if total is not None:
            self.total = max(int(total), 1)
        self.done = min(int(done), self.total)
        if self._bar is not None:
            self._bar.update_absolute(self.done, self.total)

    def step(self, count: int = 1) -> None:
        self(self.done + count)


# ---------------------------------------------------------------------------------------------- folders
def input_directory() -> Path:
    folder_paths = _folder_paths()
    return Path(folder_paths.get_input_directory()) if folder_paths is not None else Path.cwd()


def output_directory() -> Path:
    folder_paths = _folder_paths()
    return Path(folder_paths.get_output_directory()) if folder_paths is not None else Path.cwd()


def next_output_path(prefix: str, extension: str) -> tuple[Path, str]:
    """A new file `<output>/<prefix>_NNNNN_.<extension>` (ComfyUI's naming) and its name relative to the output."""
    out_dir = output_directory()
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
