"""Audio in, features out: decoding and resampling exactly as the original's ffmpeg step, the 41 features per 10 ms,
and our port of WORLD's Harvest pitch tracker."""
from a2h_core.audio.decode import load_audio, to_pcm16
from a2h_core.audio.features import AudioFeatures, extract_features

__all__ = ["AudioFeatures", "extract_features", "load_audio", "to_pcm16"]
