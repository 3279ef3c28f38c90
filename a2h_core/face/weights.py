"""Where the face detectors' weights come from, and reading them safely.

- **YuNet** (`yunet_final.pth`, kornia's conversion of libfacedetection's YuNet, Apache-2.0, 85 k parameters):
  fetched once from the Hugging Face Hub repo `kornia/yunet` (the address kornia itself uses; kornia's GitHub data
  repository as the fallback) into the Hugging Face cache, or into a folder the caller names (ComfyUI:
  `models/face_detection`). A local file is always accepted, and a copy that kornia already downloaded into the
  torch hub cache is found. Read with `torch.load(weights_only=True)`.
- **MTCNN** (Zhang et al. 2016; the weights of the original Caffe model): read from the files that ship inside
  the `mtcnn` package on PyPI (MIT licence; `pip install mtcnn` brings only `joblib` and `lz4`, never TensorFlow
  or torch). The package is never imported (its code needs TensorFlow): only its three weight files are read, with
  an unpickler that accepts nothing but numpy arrays. The `.pt` files inside facenet-pytorch's wheel (the same
  numbers in torch layout) are accepted too, so a folder holding `pnet.pt`, `rnet.pt`, `onet.pt` works.
"""
from __future__ import annotations

import importlib.util
import io
import os
import pickle
import socket
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import torch

from a2h_core.errors import Audio2HeadError

YUNET_FILE = "yunet_final.pth"
YUNET_HUB_REPO = "kornia/yunet"  # kornia.core.download.hf_url("yunet", "yunet_final.pth")
YUNET_URLS = (
    "https://huggingface.co/kornia/yunet/resolve/main/yunet_final.pth",
    "https://github.com/kornia/data/raw/main/yunet_final.pth",
)
MTCNN_STAGES = ("pnet", "rnet", "onet")
MTCNN_PACKAGE = "mtcnn"  # PyPI package whose mtcnn/assets/weights/*.lz4 hold the weights
FACENET_PACKAGE = "facenet_pytorch"  # its facenet_pytorch/data/*.pt hold the same weights
MODELS_DIR_ENV = "AUDIO2HEAD_FACE_MODELS_DIR"  # optional folder searched first for detector weights

# ------------------------------------------------------------------------------------------------ YuNet


def yunet_search_folders(models_dir: str | Path | None = None) -> list[Path]:
    """Folders where a `yunet_final.pth` is looked for, in order."""
    folders = [Path(models_dir)] if models_dir else []
    if os.environ.get(MODELS_DIR_ENV):
        folders.append(Path(os.environ[MODELS_DIR_ENV]))
    folders.append(Path(torch.hub.get_dir()) / "checkpoints")  # where kornia's own download lands
    return folders


def find_yunet(models_dir: str | Path | None = None) -> Path | None:
    """A local `yunet_final.pth` (the given folder, $AUDIO2HEAD_FACE_MODELS_DIR, the torch hub cache, the Hugging
    Face cache), or None. Never downloads."""
    for folder in yunet_search_folders(models_dir):
        if (folder / YUNET_FILE).is_file():
            return folder / YUNET_FILE
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(YUNET_HUB_REPO, YUNET_FILE)
    return Path(cached) if isinstance(cached, str) else None


def offline() -> bool:
    """Whether the user asked for no downloads (the Hugging Face convention)."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def yunet_missing_message(models_dir: str | Path | None = None) -> str:
    where = f"{models_dir}" if models_dir else f"the torch hub cache ({Path(torch.hub.get_dir()) / 'checkpoints'})"
    return (f"the YuNet face-detector weights {YUNET_FILE} are not on this machine and cannot be downloaded: fetch "
            f"{YUNET_URLS[0]} and put it into {where} (or pass its path as the detector), or use the offline "
            f"detector: pip install {MTCNN_PACKAGE}")


def download_yunet(models_dir: str | Path | None = None) -> Path:
    """Fetch `yunet_final.pth` once: into `models_dir` when given (ComfyUI's models/face_detection), otherwise into
    the Hugging Face cache. Raises Audio2HeadError naming the file and where to put it when that fails."""
    if offline():
        raise Audio2HeadError(yunet_missing_message(models_dir) + " (HF_HUB_OFFLINE is set)")
    problems = []
    if not any(_reachable(url) for url in YUNET_URLS):  # offline: say so at once, not after the clients' retries
        raise Audio2HeadError(yunet_missing_message(models_dir) + " (no network: neither "
                              f"{' nor '.join(urlsplit(url).hostname for url in YUNET_URLS)} can be reached)")
    try:
        from huggingface_hub import hf_hub_download

        kwargs = {"local_dir": str(models_dir)} if models_dir else {}
        return Path(hf_hub_download(YUNET_HUB_REPO, YUNET_FILE, **kwargs))
    except Exception as exc:  # no network, hub down, proxy: try the second address
        problems.append(f"{YUNET_URLS[0]}: {type(exc).__name__}")
    target = Path(models_dir or Path(torch.hub.get_dir()) / "checkpoints") / YUNET_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(YUNET_URLS[1], str(target), progress=False)
        return target
    except Exception as exc:
        problems.append(f"{YUNET_URLS[1]}: {type(exc).__name__}")
    raise Audio2HeadError(yunet_missing_message(models_dir) + f" (download failed: {'; '.join(problems)})")


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout` seconds."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def read_yunet_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The YuNet state dict from a `.pth` file, read with weights_only=True (nothing in it is executed)."""
    path = Path(path)
    if not path.is_file():
        raise Audio2HeadError(f"face-detector weights {str(path)!r} do not exist: check the path, or leave the "
                              f"detector on auto")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise Audio2HeadError(f"cannot read {str(path)!r} as YuNet weights ({type(exc).__name__}): download "
                              f"{YUNET_URLS[0]} again") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise Audio2HeadError(f"{str(path)!r} holds no YuNet state dict: give kornia's {YUNET_FILE}")
    return state


# ------------------------------------------------------------------------------------------------ MTCNN


def _package_folder(name: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _stage_files(folder: Path) -> dict[str, Path] | None:
    for suffix in (".lz4", ".pt"):
        files = {stage: folder / f"{stage}{suffix}" for stage in MTCNN_STAGES}
        if all(f.is_file() for f in files.values()):
            return files
    return None


def find_mtcnn(models_dir: str | Path | None = None) -> dict[str, Path] | None:
    """The three MTCNN weight files: from a folder holding pnet/rnet/onet (.lz4 or .pt), $AUDIO2HEAD_FACE_MODELS_DIR,
    the installed `mtcnn` package, or an installed facenet-pytorch; None when there are none."""
    folders = []
    for base in (models_dir, os.environ.get(MODELS_DIR_ENV)):
        if base:
            folders += [Path(base), Path(base) / "mtcnn"]
    package = _package_folder(MTCNN_PACKAGE)
    if package is not None:
        folders.append(package / "assets" / "weights")
    facenet = _package_folder(FACENET_PACKAGE)
    if facenet is not None:
        folders.append(facenet / "data")
    for folder in folders:
        files = _stage_files(folder)
        if files:
            return files
    return None


def mtcnn_missing_message() -> str:
    return (f"the offline face detector needs the MTCNN weights that ship in the '{MTCNN_PACKAGE}' package: pip "
            f"install {MTCNN_PACKAGE} (it brings only joblib and lz4, no TensorFlow), or give a folder holding "
            f"pnet.lz4, rnet.lz4, onet.lz4")


_NUMPY_PICKLE_GLOBALS = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"), ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


def _read_joblib_arrays(path: Path) -> list[np.ndarray]:
    """A joblib + lz4 file holding a list of numpy arrays; any other pickled object is refused, never built."""
    try:
        import lz4.frame
        from joblib.numpy_pickle import NumpyUnpickler
    except ImportError:
        raise Audio2HeadError(f"reading {path.name} needs joblib and lz4, which come with the '{MTCNN_PACKAGE}' "
                              f"package: pip install {MTCNN_PACKAGE}") from None

    class ArraysOnly(NumpyUnpickler):
        def find_class(self, module, name):
            if (module, name) not in _NUMPY_PICKLE_GLOBALS:
                raise pickle.UnpicklingError(f"{module}.{name} is not a numpy array")
            return super().find_class(module, name)

    try:
        handle = io.BytesIO(lz4.frame.decompress(path.read_bytes()))
        try:
            unpickler = ArraysOnly(str(path), handle, ensure_native_byte_order=True)
        except TypeError:  # joblib before 1.5 has no ensure_native_byte_order
            unpickler = ArraysOnly(str(path), handle)
        arrays = unpickler.load()
    except Exception as exc:
        raise Audio2HeadError(f"cannot read the MTCNN weights {str(path)!r} ({type(exc).__name__}: {exc}): "
                              f"reinstall the '{MTCNN_PACKAGE}' package") from None
    if not isinstance(arrays, list) or not all(isinstance(a, np.ndarray) for a in arrays):
        raise Audio2HeadError(f"{str(path)!r} does not hold the MTCNN weight arrays: reinstall '{MTCNN_PACKAGE}'")
    return arrays


# Keras weight order of each stage -> this project's parameter names. Convolution kernels are (kh, kw, in, out),
# dense kernels (in, out), PReLU slopes (1, 1, C) or (C,).
_KERAS_ORDER = {
    "pnet": ["conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "box", "score"],
    "rnet": ["conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "fc4", "prelu4", "box", "score"],
    "onet": ["conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "conv4", "prelu4", "fc5", "prelu5", "box",
             "landmarks", "score"],
}
# facenet-pytorch's parameter names -> this project's (its layers are otherwise the same, in torch layout).
_FACENET_NAMES = {
    "pnet": {"conv4_1": "score", "conv4_2": "box"},
    "rnet": {"dense4": "fc4", "dense5_1": "score", "dense5_2": "box"},
    "onet": {"dense5": "fc5", "dense6_1": "score", "dense6_2": "box", "dense6_3": "landmarks"},
}


def _keras_to_state(stage: str, arrays: list[np.ndarray]) -> dict[str, torch.Tensor]:
    state, queue = {}, list(arrays)
    for name in _KERAS_ORDER[stage]:
        if name.startswith("prelu"):
            state[f"{name}.weight"] = torch.from_numpy(queue.pop(0).reshape(-1).copy())
            continue
        kernel, bias = queue.pop(0), queue.pop(0)
        kernel = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        state[f"{name}.bias"] = torch.from_numpy(bias.copy())
    if queue:
        raise Audio2HeadError(f"the MTCNN {stage} weights hold {len(arrays)} arrays, more than the network has: "
                              f"reinstall the '{MTCNN_PACKAGE}' package")
    return state


def read_mtcnn_states(files: dict[str, Path]) -> dict[str, dict[str, torch.Tensor]]:
    """{stage: state dict} for P-Net, R-Net and O-Net from .lz4 (mtcnn package) or .pt (facenet-pytorch) files."""
    states = {}
    for stage, path in files.items():
        if path.suffix == ".pt":
            try:
                raw = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise Audio2HeadError(f"cannot read the MTCNN weights {str(path)!r} ({type(exc).__name__})") from None
            rename = _FACENET_NAMES[stage]
            states[stage] = {rename.get(k.split(".")[0], k.split(".")[0]) + "." + k.split(".", 1)[1]: v
                             for k, v in raw.items()}
        else:
            try:
                states[stage] = _keras_to_state(stage, _read_joblib_arrays(path))
            except IndexError:
                raise Audio2HeadError(f"the MTCNN weights {str(path)!r} lack arrays: reinstall "
                                      f"'{MTCNN_PACKAGE}'") from None
    return states
