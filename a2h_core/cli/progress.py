"""A text progress bar for the long commands."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    """A one-line text progress bar with rate and ETA, drawn on stderr (no dependency)."""

    def __init__(self, label: str, stream=None, width: int = 30, unit: str = "frames",
                 initial: int = 0):
        self.label, self.width, self.unit = label, width, unit
        self.initial = initial  # units already done when the bar starts (a resumed run): not counted in the rate
        self.stream = stream or sys.stderr
        self.start = time.monotonic()

    def __call__(self, done: int, total: int, note: str = "") -> None:
        """Draw `done` of `total` units; `note` (e.g. the current loss) is shown after the ETA."""
        elapsed = time.monotonic() - self.start
        rate = (done - self.initial) / elapsed if elapsed > 0 else 0.0
        remaining = (total - done) / rate if rate > 0 else float("nan")
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total} {self.unit}, {rate:.2f} {self.unit}/s, "
                          f"ETA {_clock(remaining)}{'  ' + note if note else ''}   ")
        if done >= total:
            self.stream.write(f"\n{self.label}: {total} {self.unit} in {_clock(elapsed)}\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: no rate yet
        return "--:--"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"
