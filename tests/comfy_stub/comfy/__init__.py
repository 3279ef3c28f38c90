"""Test double of ComfyUI's `comfy` package: the few pieces of model management, ModelPatcher and ProgressBar the
pack uses, with ComfyUI's names, arguments and behaviour on a CPU-only machine (see ../README.md)."""
