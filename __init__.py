"""ComfyUI-Audio2Head: ComfyUI registers this pack through `comfy_entrypoint` (V3 nodes) and `WEB_DIRECTORY`.

No NODE_CLASS_MAPPINGS here on purpose: ComfyUI ignores `comfy_entrypoint` when it is present.
Outside ComfyUI (for example when pytest imports the repository root as a package) there is nothing to register.
"""
import importlib.util
import os
import sys

# The library `a2h_core` sits beside this file; make it importable as a top-level package (appended, so nothing
# already installed is shadowed).
_PACK_DIR = os.path.dirname(os.path.abspath(__file__))
if _PACK_DIR not in sys.path:
    sys.path.append(_PACK_DIR)

WEB_DIRECTORY = "./web/js"

# ComfyUI imports this file as a package. pytest may import it as a bare module (when the checkout's folder name is
# not an identifier, such as "ComfyUI-Audio2Head"); then there is no package to import the nodes from.
if __package__:
    if importlib.util.find_spec("comfy_api") is not None:
        from .nodes import comfy_entrypoint  # noqa: F401
    elif "folder_paths" in sys.modules:  # inside a ComfyUI too old for V3 nodes
        raise ImportError("ComfyUI-Audio2Head needs a ComfyUI with the V3 node API (comfy_api.latest): update ComfyUI")
