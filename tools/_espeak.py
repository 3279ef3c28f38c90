"""espeak-ng test speech, shared by the comparison tools (compare_features.py, compare_harvest.py)."""
from __future__ import annotations

import subprocess
from pathlib import Path


def espeak(path: Path, voice: str, speed: int, pitch: int, text: str, **run_options) -> Path:
    """Writes `text` spoken by espeak-ng (voice, words per minute, pitch 0-99) to the WAV `path` (espeak's native
    22.05 kHz) and returns the path; `run_options` go to subprocess.run (which raises if espeak-ng fails)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
                   check=True, **run_options)
    return path
