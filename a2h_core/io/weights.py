"""Audio2Head weights: convert the published checkpoint to safetensors, then find, validate and load weights.

The authors published one pickle, `audio2head.pth.tar`, holding four state dicts (`audio2pose`, `audio2kp`,
`kp_detector`, `generator`). We store the same tensors in one flat safetensors file whose keys are the
`Audio2HeadModels` state-dict names ("audio2pose.…", "audio2kp.…", …). Its metadata records the format version and
the SHA-256 of the pickle it came from, which is how a conversion cached beside the pickle is recognised as current.

Pickles are only ever read with `torch.load(weights_only=True)`: a checkpoint that needs more is refused, never
executed. Every file is validated against the networks (names, shapes, dtypes, finite values) before it is used.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.utils import tqdm as hub_tqdm
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from a2h_core.config import ModelConfig, model_config_from_dict
from a2h_core.device import parse_device, parse_dtype
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.paths import atomic_output, checked_output_file

SUBMODELS = ("audio2pose", "audio2kp", "kp_detector", "generator")  # the checkpoint's four state dicts, in order
FORMAT_NAME = "audio2head"  # metadata "format" of the files we write
FORMAT_VERSION = "1"  # metadata "format_version"; bump when the key layout or metadata meaning changes
DEFAULT_FILENAME = "audio2head.safetensors"  # the converted file's name, also the default file of a Hub repo
ORIGINAL_FILENAME = "audio2head.pth.tar"  # the authors' checkpoint
ORIGINAL_SUFFIXES = (".pth.tar", ".pth", ".tar", ".pt")  # pickled checkpoints we accept (read with weights_only)
SAFETENSORS_SUFFIX = ".safetensors"
_NAMES_SHOWN = 5  # names listed per group in validation errors before "… and N more"
_HASH_CHUNK = 1 << 20  # bytes read at a time while hashing

_HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # "owner/name"

GET_WEIGHTS_HELP = (
    "Get the weights in one of two ways: (1) download the authors' checkpoint 'audio2head.pth.tar' (the Google "
    "Drive link in the README of wangsuzhen/Audio2Head) and pass its path or its folder (in ComfyUI: put it into "
    "ComfyUI/models/audio2head/); it is converted to safetensors once, on first use, and cached beside it; or "
    "(2) pass a Hugging Face Hub repo id 'owner/name' that holds a converted 'audio2head.safetensors'. To convert "
    "by hand: python -m a2h_core convert audio2head.pth.tar audio2head.safetensors"
)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks so a large checkpoint never sits in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def config_name(config: ModelConfig) -> str:
    """"published", "reduced" or "custom": a short name for messages and metadata."""
    if config == ModelConfig.published():
        return "published"
    if config == ModelConfig.reduced():
        return "reduced"
    return "custom"


# --------------------------------------------------------------------------------------------------------------------
# The original pickle


def read_original_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The four state dicts of an original checkpoint as one flat dict with prefixed keys, and the names of the
    checkpoint's other top-level entries (optimizer states and the like), which are not needed for inference."""
    path = Path(path)
    if path.is_dir():
        raise Audio2HeadError(f"Checkpoint {path} is a folder: give the checkpoint file itself (e.g. "
                              f"{path / ORIGINAL_FILENAME}).")
    if not path.is_file():
        raise Audio2HeadError(f"Checkpoint not found: {path}. {GET_WEIGHTS_HELP}")
    if is_safetensors_file(path):
        raise Audio2HeadError(
            f"{path} is already a safetensors file, not a pickled checkpoint: it needs no conversion. Load it "
            f"directly (--weights {path}, or load_models({str(path)!r})).")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files (UnpicklingError, IndexError, ...)
        # Decided from the file's structure, never from torch's wording (which changes between versions): the
        # pickle's opcodes are read, without running anything, for globals a tensors-only load cannot allow.
        code = [name for name in pickle_globals(path) if not _allowed_global(name)]
        if code:
            raise Audio2HeadError(
                f"Refusing to read {path}: loading it would run code stored in the file (it calls "
                f"{', '.join(repr(name) for name in code[:3])}), so it was refused and nothing ran. A plain checkpoint "
                "holds only tensors; this one would need torch.load(weights_only=False), which this package never "
                f"uses. Use the authors' original {ORIGINAL_FILENAME}, or re-save its four state dicts as plain "
                "tensors in a trusted environment.") from None
        raise _corrupt_checkpoint_error(path, exc) from exc

    if not isinstance(checkpoint, Mapping):
        raise Audio2HeadError(
            f"{path} holds a {type(checkpoint).__name__}, not the dict of the four Audio2Head state dicts "
            f"({', '.join(SUBMODELS)}). Use the authors' original {ORIGINAL_FILENAME}.")
    absent = [name for name in SUBMODELS if name not in checkpoint]
    if absent:
        found = ", ".join(map(str, checkpoint)) or "nothing"
        raise Audio2HeadError(
            f"{path} lacks the state dict(s) {', '.join(absent)} (it holds: {found}). An Audio2Head checkpoint "
            f"holds {', '.join(SUBMODELS)}; use the authors' original {ORIGINAL_FILENAME}.")

    tensors: dict[str, torch.Tensor] = {}
    for name in SUBMODELS:
        state = checkpoint[name]
        if not isinstance(state, Mapping):
            raise Audio2HeadError(f"{path}: entry {name!r} is a {type(state).__name__}, not a state dict.")
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise Audio2HeadError(f"{path}: {name}.{key} is a {type(value).__name__}, not a tensor.")
            tensors[f"{name}.{key}"] = value.contiguous()
    ignored = sorted(str(key) for key in checkpoint if key not in SUBMODELS)
    return tensors, ignored


_STRING_OPCODES = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
                   "STRING"}
_PICKLES_PER_LEGACY_FILE = 5  # torch's legacy format: magic, protocol, sys info, the object, the storage keys


def pickle_globals(path: str | Path) -> list[str]:
    """"module.name" of every global a checkpoint's pickle refers to, read from its opcodes (nothing is executed).

    Handles torch's zip format (every `*.pkl` member) and the legacy format (consecutive pickles). A truncated
    pickle yields the globals before the damage."""
    import pickletools
    import zipfile

    found: list[str] = []

    def scan(stream) -> bool:
        strings: list[str] = []
        try:
            for opcode, argument, _ in pickletools.genops(stream):
                if opcode.name == "GLOBAL":
                    found.append(str(argument).replace(" ", "."))
                elif opcode.name in _STRING_OPCODES:
                    strings.append(argument if isinstance(argument, str) else repr(argument))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # damaged or not a pickle: what was read so far is the answer
            return False
        return True

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if member.endswith(".pkl"):
                        with archive.open(member) as stream:
                            scan(stream)
        else:
            with open(path, "rb") as stream:
                for _ in range(_PICKLES_PER_LEGACY_FILE):
                    if not scan(stream):
                        break
    except (OSError, zipfile.BadZipFile, RuntimeError):
        pass
    return found


def _allowed_global(name: str) -> bool:
    """Whether torch.load(weights_only=True) accepts this global (so it cannot run code)."""
    try:
        from torch import _weights_only_unpickler

        allowed = set(_weights_only_unpickler._get_allowed_globals())
    except (ImportError, AttributeError):  # a torch without that helper: the globals plain checkpoints use
        allowed = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
                   "torch.Size", "torch.device", "torch.Tensor", "torch.nn.parameter.Parameter"}
    allowed.update(f"{obj.__module__}.{obj.__qualname__}" for obj in torch.serialization.get_safe_globals()
                   if hasattr(obj, "__qualname__"))
    module, _, attribute = name.rpartition(".")
    return name in allowed or (module == "torch" and attribute.endswith("Storage"))


def is_safetensors_file(path: str | Path) -> bool:
    """Whether a file starts like safetensors: an 8-byte little-endian header size, then a JSON object."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
            size = os.fstat(handle.fileno()).st_size
    except OSError:
        return False
    if len(head) < 9:
        return False
    header = int.from_bytes(head[:8], "little")
    return 2 <= header <= size - 8 and head[8:9] == b"{"


def _corrupt_checkpoint_error(path: Path, exc: BaseException) -> Audio2HeadError:
    # torch's weights_only message suggests weights_only=False; only the unpickler's own reason is worth showing.
    unpickler = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
    text = unpickler.group(1) if unpickler else str(exc).strip()
    detail = re.split(r"\.\s", text.splitlines()[0])[0][:200] if text else type(exc).__name__
    return Audio2HeadError(
        f"{path} is not a readable PyTorch checkpoint: it is truncated or corrupt ({detail}). Download "
        f"{ORIGINAL_FILENAME} again (compare its size with the download page) and retry.")


# --------------------------------------------------------------------------------------------------------------------
# Conversion


def convert_checkpoint(src: str | Path, dst: str | Path, *, config: ModelConfig | None = None) -> Path:
    """Convert an original `.pth.tar` checkpoint into one flat safetensors file at `dst`; return `dst`.

    The tensors are validated against the networks of `config` (default: the published model) before anything is
    written, and the file is written atomically, so an interrupted conversion leaves no finished-looking file.
    """
    src, dst = Path(src), Path(dst)
    if dst.suffix != SAFETENSORS_SUFFIX:
        raise Audio2HeadError(f"The converted file must end in {SAFETENSORS_SUFFIX}, got {dst.name!r}.")
    if src.is_file() and not is_safetensors_file(src):  # checked before the conversion, not after it
        checked_output_file(dst, "converted file", inputs=[src])
    config = config or ModelConfig.published()
    tensors, metadata = _convert(src, config)
    _save_atomically(tensors, dst, metadata)
    return dst


def _convert(src: Path, config: ModelConfig) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The validated flat tensors of an original checkpoint and the metadata to store with them."""
    tensors, ignored = read_original_checkpoint(src)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "source_file": src.name,
        "source_sha256": file_sha256(src),
        "ignored_entries": ",".join(ignored),
        "config": config_name(config),
        "model_config": json.dumps(dataclasses.asdict(config), sort_keys=True),
    }
    validate_state_dict(tensors, config, source=src, metadata=metadata)
    return tensors, metadata


def _save_atomically(tensors: dict[str, torch.Tensor], dst: Path, metadata: dict[str, str]) -> None:
    """Write to a hidden temporary name in the same folder, then rename: readers see the old file or the new one."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dst, "converted file") as partial:
        save_file(tensors, str(partial), metadata=metadata)


def converted_cache_path(original: str | Path) -> Path:
    """Where the conversion of an original checkpoint is cached: `<name>.safetensors` beside it."""
    original = Path(original)
    name = original.name
    for suffix in ORIGINAL_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return original.with_name(name + SAFETENSORS_SUFFIX)


# --------------------------------------------------------------------------------------------------------------------
# Reading and validating safetensors files


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a safetensors file (reads the header only)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise _corrupt_safetensors_error(path, exc) from exc


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (on the CPU) and the metadata of a safetensors file."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except (SafetensorError, OSError) as exc:
        raise _corrupt_safetensors_error(path, exc) from exc
    if metadata.get("format") == FORMAT_NAME and _newer_format(metadata.get("format_version", "")):
        raise Audio2HeadError(
            f"{path} was written by a newer version of this package (weights format "
            f"{metadata['format_version']}, this one reads {FORMAT_VERSION}): update the package.")
    return tensors, metadata


def _newer_format(version: str) -> bool:
    return version.isdigit() and int(version) > int(FORMAT_VERSION)


def _corrupt_safetensors_error(path: Path, exc: BaseException) -> Audio2HeadError:
    return Audio2HeadError(
        f"{path} is not a readable safetensors file: it is truncated or corrupt ({exc}). Delete it and download it "
        f"again, or convert the original checkpoint again: python -m a2h_core convert {ORIGINAL_FILENAME} "
        f"{path.name}")


@lru_cache(maxsize=4)
def _expected_tensors(config: ModelConfig) -> dict[str, torch.Tensor]:
    """The networks' state dict as shape-and-dtype-only ("meta") tensors: built without allocating weights."""
    with torch.device("meta"):
        return dict(Audio2HeadModels(config).state_dict())


def _optional(key: str) -> bool:
    # Batch norm fills a missing step counter itself; it is unused in eval mode, and old checkpoints lack it.
    return key.endswith(".num_batches_tracked")


def validate_state_dict(tensors: Mapping[str, torch.Tensor], config: ModelConfig | None = None, *,
                        source: str | Path = "the weights", metadata: Mapping[str, str] | None = None) -> None:
    """Raise Audio2HeadError unless `tensors` fit the networks of `config`: names, shapes, dtypes, finite values.

    Problems are listed by name, grouped per sub-model, so a user can tell a wrong file from a damaged one.
    """
    config = config or ModelConfig.published()
    expected = _expected_tensors(config)
    problems: dict[str, dict[str, list[str]]] = {}  # sub-model -> kind of problem -> entries

    def report(key: str, kind: str, entry: str) -> None:
        group = key.split(".", 1)[0] if key.split(".", 1)[0] in SUBMODELS else "(no sub-model)"
        problems.setdefault(group, {}).setdefault(kind, []).append(entry)

    for key in expected:
        if key not in tensors and not _optional(key):
            report(key, "missing", key)
    for key, tensor in tensors.items():
        if key not in expected:
            report(key, "unexpected", key)
        elif tuple(tensor.shape) != tuple(expected[key].shape):
            report(key, "shape mismatch", f"{key} (file {list(tensor.shape)}, model {list(expected[key].shape)})")
        elif tensor.is_floating_point() != expected[key].is_floating_point() or tensor.is_complex():
            wanted = "floating point" if expected[key].is_floating_point() else str(expected[key].dtype)
            report(key, "wrong dtype", f"{key} ({str(tensor.dtype).removeprefix('torch.')}, expected {wanted})")
    if not problems:
        for key, tensor in tensors.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                report(key, "NaN/Inf values", f"{key} ({bad} of {tensor.numel()})")
    if not problems:
        return

    lines = [f"{source} does not fit the Audio2Head networks ({config_name(config)} config):"]
    for group in [*SUBMODELS, "(no sub-model)"]:
        for kind, entries in problems.get(group, {}).items():
            shown = ", ".join(entries[:_NAMES_SHOWN])
            more = f" … and {len(entries) - _NAMES_SHOWN} more" if len(entries) > _NAMES_SHOWN else ""
            lines.append(f"  {group}: {kind} ({len(entries)}): {shown}{more}")
    lines.append(_validation_fix(problems, config, metadata or {}))
    raise Audio2HeadError("\n".join(lines))


def _validation_fix(problems: dict[str, dict[str, list[str]]], config: ModelConfig,
                    metadata: Mapping[str, str]) -> str:
    kinds = {kind for group in problems.values() for kind in group}
    if kinds == {"NaN/Inf values"}:
        return "The weights hold NaN or Inf values, so every output would be garbage: get an intact copy."
    if "shape mismatch" in kinds and config == ModelConfig.published():
        fix = ("Shape mismatch: this file is not the published Audio2Head model. Use the authors' "
               f"{ORIGINAL_FILENAME} or a file converted from it.")
    else:
        fix = (f"The file is incomplete, damaged or from another model: convert the authors' {ORIGINAL_FILENAME} "
               f"again (python -m a2h_core convert {ORIGINAL_FILENAME} {DEFAULT_FILENAME}).")
    written_for = metadata.get("config")
    if written_for and written_for != config_name(config):
        fix += f" (This file was converted for the {written_for!r} model config: load it with that config.)"
    return fix


# --------------------------------------------------------------------------------------------------------------------
# Finding the weights


def _is_original(path: Path) -> bool:
    return path.name.endswith(ORIGINAL_SUFFIXES)


def _weights_in_folder(folder: Path) -> Path:
    """The one weights file in a folder. An original checkpoint and its cached conversion count as one."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and (p.suffix == SAFETENSORS_SUFFIX or _is_original(p)))
    originals = [p for p in files if _is_original(p)]
    caches = {converted_cache_path(p) for p in originals}
    candidates = originals + [p for p in files if p.suffix == SAFETENSORS_SUFFIX and p not in caches]
    if not candidates:
        raise Audio2HeadError(f"No weights file (*.safetensors or {ORIGINAL_FILENAME}) in {folder}. {GET_WEIGHTS_HELP}")
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise Audio2HeadError(
            f"{folder} holds several weights files ({names}): pass the path of the one to use, or its file name as "
            "`filename`.")
    return candidates[0]


DownloadProgress = Callable[[int, int], None]  # (bytes done, bytes in all; 0 when unknown); may raise to stop


class _ProgressRaised(BaseException):
    """Carries an exception raised by a progress callback through huggingface_hub, which would wrap an Exception."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


def _reporting_tqdm(progress: DownloadProgress) -> type[hub_tqdm]:
    """A huggingface_hub progress-bar class (the console bar stays as it is) that also reports the bytes received
    to `progress`."""

    class ReportingTqdm(hub_tqdm):
        def __init__(self, *args, initial: int = 0, total: int | None = None, **kwargs):
            super().__init__(*args, initial=initial, total=total, **kwargs)
            self.bytes_done, self.bytes_total = initial, total or 0  # counted here: a disabled tqdm counts nothing

        def update(self, n=1):
            result = super().update(n)
            self.bytes_done += n or 0
            try:
                progress(self.bytes_done, self.bytes_total)
            except BaseException as error:
                raise _ProgressRaised(error) from None
            return result

        # With these two, a Xet download (hf_xet) uses this one bar for the bytes written instead of opening a second
        # bar for the network bytes, which would report a different count to `progress`.
        def update_transfer(self, n):
            pass

        def set_transfer_postfix_str(self, text, refresh=True):
            pass

    return ReportingTqdm


def _download_from_hub(repo_id: str, filename: str, revision: str | None,
                       progress: DownloadProgress | None = None) -> Path:
    try:
        # tqdm_class is huggingface_hub's one hook into a download's progress; a plain load calls it as before
        reporting = {"tqdm_class": _reporting_tqdm(progress)} if progress is not None else {}
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision, **reporting))
    except _ProgressRaised as stop:  # e.g. the user cancelled: not a download error
        raise stop.error from None
    except Exception as exc:  # network, authentication, missing repo/file, offline mode: all end the same way
        offline = " Offline mode is on (HF_HUB_OFFLINE) and the file is not in the Hub cache." \
            if hub_constants.HF_HUB_OFFLINE else ""
        at_revision = f" at revision {revision!r}" if revision else ""
        raise Audio2HeadError(
            f"Could not get {filename!r} from the Hugging Face Hub repo {repo_id!r}{at_revision}: "
            f"{type(exc).__name__}: {str(exc)[:300].rstrip('. ')}.{offline} "
            f"(No local file or folder {repo_id!r} exists either.) Instead, put the weights on this machine by hand "
            f"and pass their path. {GET_WEIGHTS_HELP}") from exc


def _read_original_cached(original: Path, config: ModelConfig) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors of an original checkpoint through its cached conversion, (re)converting when the cache is absent,
    damaged or made from a different version of the file. A `<name>.safetensors` that is not a conversion of this
    checkpoint (say, a file the user downloaded) is never overwritten, and neither failure stops the load."""
    cache = converted_cache_path(original)
    if cache.is_file():
        try:
            cached_metadata = read_metadata(cache)
        except Audio2HeadError:
            cached_metadata = {"format": FORMAT_NAME, "source_file": original.name}  # damaged cache: overwrite it
        if (cached_metadata.get("source_sha256") == file_sha256(original)
                and cached_metadata.get("format_version") == FORMAT_VERSION):
            return read_safetensors(cache)
        if cached_metadata.get("format") != FORMAT_NAME or cached_metadata.get("source_file") != original.name:
            warnings.warn(f"{cache} exists but is not a conversion of {original.name}, so it is left alone and the "
                          f"checkpoint is converted in memory on every load. Move one of the two files elsewhere.",
                          A2HWarning, stacklevel=4)
            return _convert(original, config)
    tensors, metadata = _convert(original, config)
    try:
        _save_atomically(tensors, cache, metadata)
    except (OSError, Audio2HeadError) as exc:
        warnings.warn(f"Could not cache the converted weights as {cache} ({exc}); they are converted again on every "
                      f"load. Convert once by hand: python -m a2h_core convert {original} {cache}", A2HWarning,
                      stacklevel=4)
    return tensors, metadata


def _read_weights(source: str | Path, config: ModelConfig, revision: str | None, filename: str | None,
                  progress: DownloadProgress | None) -> tuple[dict[str, torch.Tensor], dict[str, str], str]:
    """Tensors, metadata and a description of where they came from, for any kind of source."""
    if not isinstance(source, (str, os.PathLike)) or not str(source).strip():
        raise Audio2HeadError(f"The weights source must be a file or folder path or a Hub repo id 'owner/name', got "
                              f"{source!r}"[:300] + f". {GET_WEIGHTS_HELP}")
    if filename is not None:
        _check_filename(filename)
    path = Path(source).expanduser()
    if not path.exists():
        if isinstance(source, str) and _HUB_REPO_ID.match(source) and not _is_original(path) \
                and path.suffix != SAFETENSORS_SUFFIX:
            path = _download_from_hub(source, filename or DEFAULT_FILENAME, revision, progress)
            origin = f"{path} (Hub repo {source!r})"
            if _is_original(path):  # the Hub cache is no place for our own files: convert in memory
                tensors, metadata = _convert(path, config)
                return tensors, metadata, origin
            return *read_safetensors(path), origin
        raise Audio2HeadError(f"Weights not found: {source} does not exist. {GET_WEIGHTS_HELP}")
    if revision:
        raise Audio2HeadError(f"`revision` only applies to Hub repo ids, but {source} is a local path.")
    if path.is_dir():
        path = path / filename if filename else _weights_in_folder(path)
        if not path.is_file():
            raise Audio2HeadError(f"{path} does not exist. {GET_WEIGHTS_HELP}")
    elif filename and filename != path.name:
        raise Audio2HeadError(f"`filename` ({filename!r}) only applies to folders and Hub repos, but {source} is a "
                              "file: pass the file you mean as the source.")
    if _is_original(path):
        return *_read_original_cached(path, config), str(path)
    if path.suffix == SAFETENSORS_SUFFIX:
        return *read_safetensors(path), str(path)
    raise Audio2HeadError(
        f"{path} is neither a .safetensors file nor an original checkpoint ({', '.join(ORIGINAL_SUFFIXES)}).")


def _check_filename(filename) -> None:
    """`filename` names a file inside the folder or repo: no absolute path, no `..`, so it cannot escape it."""
    if not isinstance(filename, str):
        raise Audio2HeadError(f"`filename` must be a file name, got a {type(filename).__name__}.")
    parts = Path(filename.replace("\\", "/")).parts
    if Path(filename).is_absolute() or filename.startswith(("/", "\\")) or ".." in parts or not parts:
        raise Audio2HeadError(f"`filename` {filename!r} leaves the folder (or repo) it names a file in: give a name "
                              "inside it, such as 'audio2head.safetensors' or 'sub/audio2head.safetensors'.")


# --------------------------------------------------------------------------------------------------------------------
# Loading


def _declared_config(metadata: dict[str, str]) -> ModelConfig:
    """The config a weights file was written for: the reduced test widths, a custom config recorded in full (trained
    with `train --config FILE.json`), else the published model."""
    if metadata.get("config") == config_name(ModelConfig.reduced()):
        return ModelConfig.reduced()
    if metadata.get("config") == "custom" and metadata.get("model_config"):
        try:
            return model_config_from_dict(json.loads(metadata["model_config"]))
        except (ValueError, TypeError) as exc:
            raise Audio2HeadError(f"the weights' model_config metadata is unreadable ({exc}): the file is damaged or "
                                  "from a newer version of this package") from exc
    return ModelConfig.published()


def save_models(models: Audio2HeadModels, path: str | Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write the four networks as one weights file in this package's format (what `convert` writes, loadable
    wherever weights are asked for), validated first and written atomically. `metadata` adds string entries (a
    training run records its config and summary); the format entries cannot be overridden."""
    path = Path(path)
    if path.suffix != SAFETENSORS_SUFFIX:
        raise Audio2HeadError(f"weights files must end in {SAFETENSORS_SUFFIX}, got {path.name!r}")
    tensors = {key: value.detach().to("cpu", torch.float32 if value.is_floating_point() else value.dtype)
               .contiguous().clone() for key, value in models.state_dict().items()}
    config = models.config
    document = {str(k): str(v) for k, v in (metadata or {}).items()}
    document.update({
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": config_name(config),
        "model_config": json.dumps(dataclasses.asdict(config), sort_keys=True),
    })
    validate_state_dict(tensors, config, source=path, metadata=document)
    _save_atomically(tensors, path, document)
    return path


def load_models(source: str | Path, *, device: str | torch.device = "cpu", dtype: str | torch.dtype = torch.float32,
                config: ModelConfig | None = None, revision: str | None = None, filename: str | None = None,
                download_progress: DownloadProgress | None = None) -> Audio2HeadModels:
    """The four networks with validated weights, in eval mode, on `device` in `dtype`, gradients off.

    source: a .safetensors file; a folder holding one weights file; the authors' original .pth.tar (converted once
    and cached as `<name>.safetensors` beside it, reused while the pickle's SHA-256 matches); or a Hugging Face Hub
    repo id "owner/name" (`filename` defaults to "audio2head.safetensors"; `revision` picks a branch, tag or
    commit; HF_HUB_OFFLINE and the Hub cache are honoured). `config` defaults to the one the file declares in its
    metadata: the reduced test widths for files written with `ModelConfig.reduced()`, else the published model.
    download_progress(bytes done, bytes in all or 0) follows a Hub download; an exception raised in it stops the
    download (huggingface_hub resumes it next time).
    """
    dtype, device = parse_dtype(dtype), parse_device(device)
    tensors, metadata, origin = _read_weights(source, config or ModelConfig.published(), revision or None,
                                              filename or None, download_progress)
    config = config or _declared_config(metadata)
    validate_state_dict(tensors, config, source=origin, metadata=metadata)
    # Built on the meta device and given the loaded tensors themselves: no random init, no second copy in memory.
    with torch.device("meta"):
        models = Audio2HeadModels(config)
    models.load_state_dict(tensors, strict=True, assign=True)
    return models.to(device=device, dtype=dtype).eval().requires_grad_(False)
