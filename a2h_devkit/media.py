"""What tests and tools read back from our outputs: an MP4's streams, and a soundtrack's samples all at once."""
from __future__ import annotations

import os

import numpy as np

from a2h_core.audio.soundtrack import Soundtrack


def soundtrack_samples(track: Soundtrack) -> np.ndarray:
    """Every remaining sample of a soundtrack, [channels, samples] float32 (consumes its chunks)."""
    pieces = list(track.chunks)
    return np.concatenate(pieces, axis=1) if pieces else np.zeros((track.channels, 0), np.float32)


def read_video_info(path: str | os.PathLike) -> dict:
    """Frame rate, frame count, size, codecs and sound duration of an MP4."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {
            "fps": video.average_rate,
            "frames": video.frames,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "video_codec": video.codec_context.name,
            "video_seconds": float(video.duration * video.time_base) if video.duration else None,
            "audio_codec": None,
            "audio_seconds": None,
        }
        if container.streams.audio:
            audio = container.streams.audio[0]
            info["audio_codec"] = audio.codec_context.name
            info["audio_seconds"] = float(audio.duration * audio.time_base) if audio.duration else None
            info["sample_rate"] = audio.codec_context.sample_rate
    return info
