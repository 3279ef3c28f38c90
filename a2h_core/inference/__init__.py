"""Inference: the wrapper runs the networks stage by stage on tensors; the pipeline strings the stages into a
video, streaming frames to the writer."""
