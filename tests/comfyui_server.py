"""Helper of the opt-in real-ComfyUI tests (test_comfyui_server.py, test_browser.py): a ComfyUI server on a free
local port with a temporary base directory. Not a test module."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

PACK_FOLDER = "ComfyUI-Audio2Head"  # the link to this checkout in the server's custom_nodes
START_TIMEOUT = 180  # seconds for the server to import everything and answer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_comfyui(comfy: str | Path, python: str, base: Path, extra_args: tuple = (), request_seconds: float = 30,
                    poll_seconds: float = 0.5, stop_seconds: float = 30):
    """Starts ComfyUI's main.py (on the CPU, 127.0.0.1, a free port, `base` as base directory, output to
    base/server.log) and waits until /system_stats answers; yields (url, process, log path) and stops the server
    afterwards. An AssertionError (with the log's end) when it exits or does not answer within START_TIMEOUT."""
    port = free_port()
    log = base / "server.log"
    command = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
               "--disable-api-nodes", "--base-directory", str(base), "--database-url", "sqlite:///:memory:",
               "--preview-method", "none", *extra_args]
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, cwd=comfy, stdout=log_file, stderr=subprocess.STDOUT,
                                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"ComfyUI exited:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{url}/system_stats", timeout=request_seconds):
                    break
            except OSError:  # connection refused or reset, timeouts, URLError
                if time.perf_counter() - started > START_TIMEOUT:
                    raise AssertionError(f"ComfyUI did not answer within {START_TIMEOUT} s") from None
                time.sleep(poll_seconds)
        yield url, process, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
