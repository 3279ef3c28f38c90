"""Audio2Head as a plain PyTorch library: audio features, head-pose curves, the four networks and the pipeline.

Never imports ComfyUI; the ComfyUI nodes in `nodes/` are thin wrappers around this package.
"""
__version__ = "0.1.0"
