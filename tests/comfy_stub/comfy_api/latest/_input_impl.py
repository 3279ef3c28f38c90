"""`InputImpl.VideoFromFile`: ComfyUI's file-backed VIDEO object, with the methods the tests read."""
from __future__ import annotations

import io


class VideoFromFile:
    """A VIDEO backed by a file path (or BytesIO); ComfyUI's Save Video remuxes it without decoding."""

    def __init__(self, file: str | io.BytesIO):
        self.__file = file

    def get_stream_source(self) -> str | io.BytesIO:
        if isinstance(self.__file, io.BytesIO):
            self.__file.seek(0)
        return self.__file

    def get_dimensions(self) -> tuple[int, int]:
        import av

        with av.open(self.get_stream_source(), mode="r") as container:
            for stream in container.streams:
                if stream.type == "video":
                    return stream.width, stream.height
        raise ValueError(f"No video stream found in file '{self.__file}'")

    def get_duration(self) -> float:
        import av

        with av.open(self.get_stream_source(), mode="r") as container:
            if container.duration is not None:
                return float(container.duration / av.time_base)
        raise ValueError(f"Could not determine duration for file '{self.__file}'")
