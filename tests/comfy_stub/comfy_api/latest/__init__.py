"""Test double for `comfy_api.latest`: the V3 names the pack uses, with ComfyUI's signatures."""
from __future__ import annotations

from abc import ABC, abstractmethod

from . import _io as io
from . import _ui as ui
from ._input_impl import VideoFromFile

IS_TEST_DOUBLE = True  # lets tests tell this package from the real one


class ComfyExtension(ABC):
    """What `comfy_entrypoint()` returns; ComfyUI awaits `get_node_list()`."""

    async def on_load(self) -> None:  # noqa: B027  (optional hook, empty by default as in ComfyUI)
        """Called once when the extension is loaded."""

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The node classes of the extension."""


class InputImpl:
    """Implementations of the input types (ComfyUI also has VideoFromComponents; the pack does not use it)."""

    VideoFromFile = VideoFromFile


__all__ = ["ComfyExtension", "InputImpl", "io", "ui"]
