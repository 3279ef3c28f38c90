"""Output files and folders: checked before any long stage, written under a temporary name, renamed when complete.

- `checked_output_file` / `checked_output_folder` create missing parent folders and prove the folder is writable
  (by creating and removing a probe file), so a bad output path fails in milliseconds with a message saying what is
  wrong, not after a long render with a traceback.
- `atomic_output` yields a hidden temporary path beside the output; the output appears under its own name only when
  the block ends normally. On any exception (Ctrl-C, SIGTERM turned into an exception, a full disk) the temporary
  file is removed, so an interrupted run never leaves a file that looks complete.

Shared by the library's writers (video, pose curves, features, plots, converted weights, intermediates) and the
command line; it imports nothing but the standard library and `errors`.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from a2h_core.errors import Audio2HeadError

TEMP_SUFFIX = ".part"  # ending of every temporary output name: `.<name>.<pid>.<random>.part`


def temporary_name(path: str | os.PathLike) -> Path:
    """A hidden, unique temporary name in the output's own folder (so the final rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _writable_folder(folder: Path, what: str, shown: Path) -> None:
    """Create `folder` (and its parents) if missing, then prove a file can be created in it."""
    for parent in (folder, *folder.parents):
        if parent.exists() and not parent.is_dir():
            raise Audio2HeadError(f"{what} {str(shown)!r}: {str(parent)!r} is a file, not a folder; choose another "
                                  "path")
        if parent.exists():
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Audio2HeadError(f"{what} {str(shown)!r}: cannot create the folder {str(folder)!r} "
                              f"({_reason(exc)}); create it or choose another path") from None
    probe = temporary_name(folder / "write-test")
    try:
        descriptor = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise Audio2HeadError(f"{what} {str(shown)!r}: cannot write in the folder {str(folder)!r} ({_reason(exc)}); "
                              "choose a folder you can write to") from None
    os.close(descriptor)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def checked_output_file(path, what: str = "output", suffixes: Iterable[str] | None = None,
                        inputs: Iterable = ()) -> Path:
    """`path` as a Path after checking that a file can be written there; missing parent folders are created.

    what: how messages name the output ("--out", "pose-curve file", ...). suffixes: accepted endings (lower case,
    e.g. (".json", ".csv")); None accepts any. inputs: paths the run reads; writing over one of them is refused.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise Audio2HeadError(f"{what} must be a file path, got a {type(path).__name__}")
    path = Path(path).expanduser()
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if path.suffix.lower() not in suffixes:
            raise Audio2HeadError(f"{what} {str(path)!r} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise Audio2HeadError(f"{what} {str(path)!r} is an existing folder: give a file name (e.g. "
                              f"{str(path / ('output' + (suffixes[0] if suffixes else '')))!r})")
    if path.exists() and not path.is_file():
        raise Audio2HeadError(f"{what} {str(path)!r} exists and is not a regular file; choose another name")
    for source in inputs:
        if isinstance(source, (str, os.PathLike)) and (_same_file(path, Path(source)) or
                                                       path.resolve() == Path(source).expanduser().resolve()):
            raise Audio2HeadError(f"{what} {str(path)!r} is also an input of this run ({str(source)!r}); writing it "
                                  "would destroy the input: choose another output name")
    _writable_folder(path.parent, what, path)
    return path


def checked_output_folder(path, what: str = "output folder") -> Path:
    """`path` as a Path after creating it (with its parents) if needed and checking that it is a writable folder."""
    if not isinstance(path, (str, os.PathLike)):
        raise Audio2HeadError(f"{what} must be a folder path, got a {type(path).__name__}")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise Audio2HeadError(f"{what} {str(path)!r} is a file, not a folder: give a folder path (it is created "
                              "if missing)")
    _writable_folder(path, what, path)
    return path


@contextlib.contextmanager
def atomic_output(path, what: str = "output") -> Iterator[Path]:
    """Write to the yielded temporary path; it is renamed to `path` when the block ends normally, removed otherwise."""
    path = Path(path)
    temp = temporary_name(path)
    try:
        yield temp
        os.replace(temp, path)
    except OSError as exc:
        remove_quietly(temp)
        raise Audio2HeadError(f"{what} {str(path)!r} could not be written ({_reason(exc)})") from None
    except BaseException:
        remove_quietly(temp)
        raise


def remove_quietly(path) -> None:
    """Delete a file if it exists; never raises for a file that is already gone."""
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        Path(path).unlink()
