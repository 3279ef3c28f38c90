"""Helper of the opt-in real-ComfyUI tests (test_comfyui_server.py, test_comfyui_video.py, test_browser.py) and
tools/comfyui_memory.py: a ComfyUI server on a free local port with a temporary base directory, and a small client of
its HTTP API. Not a test module."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
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


class Server:
    """A running server's HTTP API: queue API-format prompts and wait for their history entries."""

    def __init__(self, url: str, process: subprocess.Popen, log: Path, run_timeout: float = 600):
        self.url, self.process, self.log = url, process, log
        self.run_timeout = run_timeout  # seconds a prompt may take (a slow CPU)

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, payload: dict):
        request = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                return json.loads(body) if body else {}
        except urllib.error.HTTPError as error:
            raise AssertionError(f"POST {path} -> {error.code}: {error.read().decode()[:3000]}") from None

    def queue(self, graph: dict) -> str:
        return self.post("/prompt", {"prompt": graph, "client_id": "a2h-test"})["prompt_id"]

    def wait(self, prompt_id: str) -> dict:
        """The history entry of a prompt once it has ended (success, error or interrupted)."""
        start = time.perf_counter()
        while time.perf_counter() - start < self.run_timeout:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                return history[prompt_id]
            if self.process.poll() is not None:
                raise AssertionError(f"server died:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.25)
        raise AssertionError(f"prompt did not finish within {self.run_timeout} s")

    def run_prompt(self, graph: dict) -> tuple[dict, float]:
        """Queue an API-format graph, wait for it to succeed, return its history entry and the wall time."""
        start = time.perf_counter()
        entry = self.wait(self.queue(graph))
        if entry["status"]["status_str"] != "success":
            raise AssertionError(f"prompt failed: {json.dumps(entry['status']['messages'])[:4000]}")
        return entry, time.perf_counter() - start
