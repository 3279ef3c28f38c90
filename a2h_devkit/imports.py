"""Importing code that is not installed: the original Audio2Head checkout a tool is pointed at, the pack's `nodes`,
and the `comfy_api` test double (tests/comfy_stub) when no ComfyUI is importable. The one place where a folder is
put on `sys.path`, and only while its modules are imported."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
COMFY_STUB = REPOSITORY / "tests" / "comfy_stub"


@contextlib.contextmanager
def importable(folder: str | Path) -> Iterator[None]:
    """Within the block, top-level modules and packages of `folder` can be imported (the folder is first on
    `sys.path`); afterwards the folder is taken off again. What was imported stays in `sys.modules`."""
    entry = str(Path(folder).resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


def import_from(folder: str | Path, name: str):
    """The module `name` (dotted names allowed) imported from `folder`, with `importable`."""
    with importable(folder):
        return importlib.import_module(name)


def ensure_comfy_api() -> None:
    """Makes `comfy_api.latest` importable, so `nodes` can be imported outside ComfyUI: ComfyUI's own package when it
    is on the path, otherwise the test double in tests/comfy_stub (pytest.ini puts that on the path for the tests)."""
    if importlib.util.find_spec("comfy_api") is None:
        import_from(COMFY_STUB, "comfy_api.latest")


def pack_nodes():
    """The pack's `nodes` package (it is not installed: ComfyUI loads it from custom_nodes/), with `comfy_api` made
    importable first."""
    ensure_comfy_api()
    if "nodes" in sys.modules:
        return sys.modules["nodes"]
    return import_from(REPOSITORY, "nodes")
