"""Peak memory of a real ComfyUI server rendering clips of several lengths through the streamed VIDEO path.

For each length a fresh server starts (CPU, a temporary base directory with this pack linked in, random
reduced-width weights so that minutes of video take minutes, not hours) and runs
Load Image + Load Audio -> Audio2Head (all-in-one, frames_output "first only") -> video -> core Save Video.
The server process's resident memory (VmRSS in /proc) is sampled every 50 ms; the kernel's own high-water mark
(VmHWM) is read at the end as a check on the sampling. Prints one row per length and, with --json, writes them.

    python tools/comfyui_memory.py --comfyui /path/ComfyUI --python /path/venv/bin/python --seconds 20 60 180

Linux only (reads /proc). The audio is synthetic speech (stereo, 44.1 kHz WAV, like a typical recording).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # a2h_devkit, and the tests' ComfyUI server helper

from comfyui_server import PACK_FOLDER, Server, running_comfyui  # noqa: E402

from a2h_devkit.face_scenes import scene  # noqa: E402
from a2h_devkit.random_weights import write_reduced_weights  # noqa: E402
from a2h_devkit.resident_memory import resident_mb  # noqa: E402
from a2h_devkit.speech import speech_like, write_wav  # noqa: E402

WEIGHTS = "reduced.safetensors"
SAMPLE_SECONDS = 0.05


class PeakSampler:
    """Samples a process's VmRSS in a thread; `peak` is the largest value seen (MiB)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, resident_mb(pid=self.pid))
            except OSError:  # the server has exited
                return
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def graph(batch_size: int, frames_output: str) -> dict:
    return {
        "image": {"class_type": "LoadImage", "inputs": {"image": "portrait.png"}},
        "audio": {"class_type": "LoadAudio", "inputs": {"audio": "speech.wav"}},
        "a2h": {"class_type": "Audio2HeadAllInOne",
                "inputs": {"image": ["image", 0], "audio": ["audio", 0], "weights": WEIGHTS, "device": "auto",
                           "dtype": "auto", "batch_size": batch_size, "crop": "none", "paste_back": True,
                           "detector": "auto", "frames_output": frames_output}},
        "save": {"class_type": "SaveVideo", "inputs": {"video": ["a2h", 4], "filename_prefix": "memory/a2h",
                                                       "format": "auto", "codec": "auto"}},
    }


def measure(comfy: str, python: str, seconds: float, batch_size: int, frames_output: str) -> dict:
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="a2h_memory_") as folder:
        base = Path(folder)
        for sub in ("custom_nodes", "models/audio2head", "input", "output", "temp", "user/default"):
            (base / sub).mkdir(parents=True)
        (base / "custom_nodes" / PACK_FOLDER).symlink_to(ROOT, target_is_directory=True)
        write_reduced_weights(base / "models" / "audio2head" / WEIGHTS)
        Image.fromarray(scene("portrait", 512, 512, [(40, 20, 0.9, 0.0)]).image).save(base / "input" / "portrait.png")
        write_wav(base / "input" / "speech.wav", speech_like(seconds, 44100, channels=2), 44100)
        only_this_pack = ("--disable-all-custom-nodes", "--whitelist-custom-nodes", PACK_FOLDER)
        with running_comfyui(comfy, python, base, only_this_pack) as (url, process, log):
            server = Server(url, process, log, run_timeout=6 * 3600)
            idle = resident_mb(pid=process.pid)
            load_before = os.getloadavg()[0]
            with PeakSampler(process.pid) as sampler:
                entry, wall = server.run_prompt(graph(batch_size, frames_output))
            high_water = resident_mb(peak=True, pid=process.pid)
            result = entry["outputs"]["save"]["images"][0]
            saved = base / "output" / result["subfolder"] / result["filename"]
            import av
            with av.open(str(saved)) as container:
                frames = container.streams.video[0].frames
        return {"audio_seconds": seconds, "frames": frames, "wall_seconds": round(wall, 1),
                "idle_rss_mib": round(idle), "peak_rss_mib": round(sampler.peak),
                "vmhwm_mib": round(high_water), "mp4_mib": round(saved.stat().st_size / 2 ** 20, 1),
                "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1),
                "frames_output": frames_output, "batch_size": batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"), help="ComfyUI checkout (COMFYUI_PATH)")
    parser.add_argument("--python", default=os.environ.get("COMFYUI_PYTHON", sys.executable),
                        help="python with ComfyUI's requirements (COMFYUI_PYTHON)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[20, 60, 180], help="audio lengths")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--frames-output", default="first only", choices=["first only", "all"])
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    if not args.comfyui:
        parser.error("give --comfyui (or set COMFYUI_PATH)")
    rows = []
    print(f"{'audio s':>8} {'frames':>7} {'wall s':>7} {'idle MiB':>9} {'peak MiB':>9} {'VmHWM MiB':>10} "
          f"{'MP4 MiB':>8} {'load':>10}", flush=True)
    for seconds in args.seconds:
        row = measure(args.comfyui, args.python, seconds, args.batch_size, args.frames_output)
        rows.append(row)
        print(f"{row['audio_seconds']:>8g} {row['frames']:>7} {row['wall_seconds']:>7} {row['idle_rss_mib']:>9} "
              f"{row['peak_rss_mib']:>9} {row['vmhwm_mib']:>10} {row['mp4_mib']:>8} "
              f"{row['load_before']:>4}->{row['load_after']:<4}", flush=True)
    peaks = [row["peak_rss_mib"] for row in rows]
    print(f"peak spread (largest - smallest): {max(peaks) - min(peaks)} MiB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
