"""Bad and hostile input, every case of issue 16 and a few more: one table of case, exit code, message, seconds.

    python tools/probe_bad_input.py [--keep DIR]

Command-line cases run as subprocesses (`python -m a2h_core ...`); library and node cases run in this process (the
ComfyUI stub of tests/comfy_stub stands in for ComfyUI when it is not installed). Weights are reduced-width random
networks written here. Each case runs in its own empty folder; a case fails the probe when it shows a traceback or a
raw exception, takes longer than its limit, leaves a file it should not (temporary files included), writes outside
its folder, or, for the file-reading cases, echoes the secret text of a file into its message.

Exit code "E" marks an Audio2HeadError raised in-process (the library's refusal), 0 success, 2 the command line's
refusal, 130/143 Ctrl-C/SIGTERM. The script exits 1 when any case fails.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from scipy.io import wavfile

from a2h_core.config import ModelConfig
from a2h_core.errors import Audio2HeadError
from a2h_core.modules.models import Audio2HeadModels
from a2h_devkit.imports import REPOSITORY as ROOT
from a2h_devkit.imports import pack_nodes
from a2h_devkit.media import soundtrack_samples

SECRET = "SECRET_API_KEY=sk-12345"  # written into files the hostile cases try to read; must never be echoed
REFUSAL_LIMIT = 5.0  # seconds a refusal may take
RUN_LIMIT = 120.0  # seconds a case that really generates may take (reduced networks, 1-3 s of audio)


@dataclass
class Outcome:
    case: str
    code: str
    message: str
    seconds: float
    problem: str = ""


# ------------------------------------------------------------------------------------------------------ fixtures
def make_inputs(folder: Path) -> dict[str, Path]:
    """Weights, audio, images and hostile files the cases use (read-only for them: they never write here)."""
    torch.manual_seed(0)
    weights = folder / "reduced.safetensors"
    state = {k: v.contiguous() for k, v in Audio2HeadModels(ModelConfig.reduced()).state_dict().items()}
    save_file(state, str(weights), metadata={"format": "audio2head", "format_version": "1", "config": "reduced"})
    files = {"weights": weights}
    rate = 16000

    def voice(seconds):
        t = np.arange(int(rate * seconds)) / rate
        return 0.3 * np.sign(np.sin(2 * np.pi * (120 + 30 * t) * t)) * (np.sin(2 * np.pi * 2 * t) > 0)

    wavfile.write(folder / "speech.wav", rate, (voice(1.0) * 32767).astype(np.int16))
    wavfile.write(folder / "speech3.wav", rate, (voice(3.0) * 32767).astype(np.int16))
    wavfile.write(folder / "long.wav", rate, (voice(8.0) * 32767).astype(np.int16))
    nan = voice(1.0).astype(np.float32)
    nan[[100, 5000, 9000]] = np.nan
    wavfile.write(folder / "nan.wav", rate, nan)
    thirty = np.zeros(rate * 1800, np.int16)
    thirty[::97] = 3000
    wavfile.write(folder / "thirty_minutes.wav", rate, thirty)
    t = np.arange(44100) / 44100
    surround = np.stack([0.9 * np.sin(2 * np.pi * f * t) for f in (220, 330, 440, 50, 550, 660)], 1)
    wavfile.write(folder / "surround51.wav", 44100, surround.astype(np.float32))
    # A WAV of six channels is tagged 5.1 by ffmpeg only through a channel mask: let ffmpeg write it when present.
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(folder / "surround51.wav"), "-af",
                        "aformat=channel_layouts=5.1", "-c:a", "pcm_f32le", str(folder / "s51.wav")], check=True)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(folder / "s51.wav"), "-ac", "2", "-c:a",
                        "pcm_s16le", str(folder / "s51_ffmpeg_stereo.wav")], check=True)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(folder / "speech.wav"), "-c:a", "aac",
                        str(folder / "speech.mp4")], check=True)
        files["s51"] = folder / "s51.wav"
        files["speech_mp4"] = folder / "speech.mp4"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)).save(folder / "face.png")
    for name, size in (("1x1", (1, 1)), ("2x2", (2, 2)), ("1x1000", (1000, 1))):
        Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(folder / f"tiny_{name}.png")
    (folder / "a_folder").mkdir()
    (folder / "keys_1e8.json").write_text('{"keyframes":[{"frame":0,"yaw":0},{"frame":100000000,"yaw":10}]}')
    (folder / "keys_1e12.json").write_text('{"keyframes":[{"frame":0,"yaw":0},{"frame":1e12,"yaw":10}]}')
    (folder / "slow.json").write_text(json.dumps({"fps": 1e-9, "poses": [[0, 0, 0, 0, 0, 280], [0, .1, 0, 0, 0, 280]]}))
    (folder / "huge.json").write_text(json.dumps({"poses": [[1e300, 0, 0, 0, 0, 280]]}))
    header = "frame,face_id,timestamp,confidence,success,pose_Tx,pose_Ty,pose_Tz,pose_Rx,pose_Ry,pose_Rz"
    rows = [f"{i + 1},0,{i * 1e-6:.6f},0.98,1,0,0,280,0,0.01,0" for i in range(5)]
    (folder / "openface_1us.csv").write_text("\n".join([header, *rows]) + "\n")
    (folder / "secret.csv").write_text(f"{SECRET}\n1,2,3\n")
    return files


def run_cli(args: list, cwd: Path, timeout: float = RUN_LIMIT, on_start=None) -> tuple[str, str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "a2h_core", *map(str, args)], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if on_start is not None:
        on_start(process)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        return "timeout", (err or out).strip(), time.perf_counter() - start
    # The line that matters: the error (or interruption) message, else what was written.
    lines = [line for line in (err + "\n" + out).splitlines() if line.strip() and "\r" not in line]
    errors = [line for line in lines if line.startswith(("error:", "interrupted:", "terminated:", "Traceback"))]
    text = "\n".join(errors or lines[-1:])
    if "Traceback" in err:
        text = err.strip()
    return str(process.returncode), text, time.perf_counter() - start


def run_in_process(function) -> tuple[str, str, float]:
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = function()
    except Audio2HeadError as error:
        return "E", str(error), time.perf_counter() - start
    except Exception as error:  # a raw exception is a defect: reported, never hidden
        return f"CRASH {type(error).__name__}", str(error), time.perf_counter() - start
    return "0", "" if value is None else str(value), time.perf_counter() - start


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# ------------------------------------------------------------------------------------------------------ the cases
def cases(inputs: Path, files: dict[str, Path]):
    """(name, kind, call, expected outputs, time limit, extra check); `call(work)` runs in an empty folder."""
    w, face, speech = files["weights"], inputs / "face.png", inputs / "speech.wav"
    gen = ["generate", "--image", face, "--audio", speech, "--weights", w]
    nodes = pack_nodes()
    from a2h_core.audio.soundtrack import load_soundtrack
    from a2h_core.device import check_compute_dtype
    from a2h_core.inference.pipeline import PipelineConfig, generate
    from a2h_core.io.weights import load_models
    from a2h_core.pose import PoseCurve
    from nodes import comfy

    node = {cls.GET_SCHEMA().node_id: cls for cls in nodes.NODE_CLASSES}
    models = load_models(w)
    small = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ro_folder = Path("/sys") if os.geteuid() == 0 else None  # root writes through chmod; /sys refuses it

    def cli(*args, **kw):
        return lambda work: run_cli(list(args), work, **kw)

    def lib(function):
        return lambda work: run_in_process(lambda: function(work))

    def readonly(work):
        if ro_folder is not None:
            return ro_folder
        folder = work / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        return folder

    def sigterm_case(work):
        def kill_when_rendering(process):
            time.sleep(0.1)
            deadline = time.time() + 60
            while time.time() < deadline and process.poll() is None:
                time.sleep(0.25)
                if any(p.name.endswith(".part") for p in work.iterdir()):
                    break
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
        return run_cli(["generate", "--image", face, "--audio", inputs / "long.wav", "--weights", w, "--out",
                        work / "x.mp4", "--batch-size", "1"], work, on_start=kill_when_rendering)

    def sigint_intermediates(work):
        def interrupt_when_rendering(process):
            deadline = time.time() + 60
            while time.time() < deadline and process.poll() is None:
                time.sleep(0.25)
                if (work / "inter" / "poses.npy").exists():
                    break
            time.sleep(0.5)
            process.send_signal(signal.SIGINT)
        return run_cli(["generate", "--image", face, "--audio", inputs / "long.wav", "--weights", w, "--out",
                        work / "x.mp4", "--batch-size", "1", "--save-intermediates", work / "inter"], work,
                       on_start=interrupt_when_rendering)

    def error_during_render(work):
        def fail(done, total):
            raise RuntimeError("stopped by the probe after the first batch")
        try:
            generate(small, speech, models, PipelineConfig(save_intermediates=work / "inter", crop="none"),
                     progress=fail)
        except RuntimeError:
            left = sorted(p.name for p in (work / "inter").iterdir())
            return f"rendering stopped; intermediates left: {', '.join(left)}"

    def soundtrack_peak(work):
        track = soundtrack_samples(load_soundtrack(files["s51"]))
        _, reference = wavfile.read(files["s51"].with_name("s51_ffmpeg_stereo.wav"))
        reference = reference.T / 32768.0
        count = min(reference.shape[1], track.shape[1])
        return (f"peak {np.abs(track).max():.3f} full scale ({20 * math.log10(np.abs(track).max()):.1f} dB); "
                f"ffmpeg -ac 2 peak {np.abs(reference).max():.3f}; largest difference "
                f"{np.abs(track[:, :count] - reference[:, :count]).max():.1e}")

    def node_secret(path):
        def call(work):
            with contextlib.chdir(work):  # outside ComfyUI the input folder is the working directory
                (work / "secret.csv").write_text(f"{SECRET}\n1,2,3\n")
                try:
                    node["Audio2HeadPoseLoad"].execute(path=path, fps=25.0)
                finally:
                    (work / "secret.csv").unlink()
        return call

    def pose_save_escape(work):
        out = work / "output"
        out.mkdir()
        with contextlib.chdir(out):
            try:
                node["Audio2HeadPoseSave"].execute(pose=PoseCurve.still(num_poses=3),
                                                   filename_prefix="../../escaped_pose", format="json",
                                                   columns="axis_angle")
            finally:
                out.rmdir()

    def loader_escape(work):
        (work / "models").mkdir()
        previous, os.environ["AUDIO2HEAD_MODELS_DIR"] = os.environ.get("AUDIO2HEAD_MODELS_DIR"), str(work / "models")
        try:
            return node["Audio2HeadModelLoader"].execute(weights="../../x.safetensors", device="cpu", dtype="fp32")
        finally:
            (work / "models").rmdir()
            os.environ["AUDIO2HEAD_MODELS_DIR"] = previous

    def evil_pickle(work):
        marker = work / "PWNED"
        evil = work / "evil.pth.tar"

        class Payload:
            def __reduce__(self):
                return os.system, (f"touch {marker}",)

        torch.save({"audio2pose": {"w": Payload()}}, evil)
        try:
            load_models(evil)
        finally:
            evil.unlink()
            if marker.exists():
                raise RuntimeError("the pickle's code RAN")

    def keypoints_swapped(work):
        model = node["Audio2HeadModelLoader"].execute(weights=w.name, device="cpu", dtype="fp32")[0]
        image = torch.from_numpy(small)[None].float() / 255
        source = node["Audio2HeadKeypointDetector"].execute(model=model, image=image)[0]
        from a2h_core.modules.keypoints import Keypoints
        driving = Keypoints.cat([source] * 5)
        return node["Audio2HeadGenerator"].execute(model=model, image=image, source_keypoints=driving,
                                                   driving_keypoints=source, batch_size=4)

    def all_in_one(image, audio):
        def call(work):
            return node["Audio2HeadAllInOne"].execute(image=image, audio=audio, weights=w.name, device="cpu",
                                                      dtype="fp32", batch_size=4, crop="none", paste_back=True,
                                                      detector="auto")
        return call

    os.environ["AUDIO2HEAD_MODELS_DIR"] = str(inputs)
    speech_dict = {"waveform": torch.from_numpy(wavfile.read(speech)[1] / 32768.0).float()[None, None],
                   "sample_rate": 16000}
    image_ok = torch.from_numpy(small)[None].float() / 255
    chunks = [
        # 1. denial of service
        ("1 pose --from-keyframes, key at frame 1e8", cli("pose", "--from-keyframes", inputs / "keys_1e8.json",
                                                         "--out", "o.json")),
        ("1 pose --from-keyframes, key at frame 1e12", cli("pose", "--from-keyframes", inputs / "keys_1e12.json",
                                                          "--out", "o.json")),
        ("1 Pose Keyframes node, key at frame 1e8", lib(lambda work: node["Audio2HeadPoseKeyframes"].execute(
            keyframes=(inputs / "keys_1e8.json").read_text()))),
        ("1 pose --input curve at 1e-9 fps --fps 25", cli("pose", "--input", inputs / "slow.json", "--fps", "25",
                                                         "--out", "o.json")),
        ("1 generate --pose-curve curve at 1e-9 fps", cli(*gen, "--out", "x.mp4", "--pose-curve",
                                                          inputs / "slow.json")),
        ("1 pose --smooth 1e9", cli("pose", "--still", "--frames", "10", "--smooth", "1e9", "--out", "o.json")),
        ("1 OpenFace timestamps 1 us apart", cli("pose", "--input", inputs / "openface_1us.csv", "--out", "o.json")),
        ("1 PoseCurve.still(num_poses=10**12)", lib(lambda work: PoseCurve.still(num_poses=10 ** 12))),
        # 2. options that never finish
        ("2 generate --dtype fp16 on CPU", cli(*gen, "--out", "x.mp4", "--dtype", "fp16")),
        ("2 bf16 on a CPU without native bf16", lib(lambda work: _without_native_bf16(
            lambda: check_compute_dtype("cpu", "bf16", "--dtype")))),
        ("2 Model Loader fp16 on CPU", lib(lambda work: node["Audio2HeadModelLoader"].execute(
            weights=w.name, device="cpu", dtype="fp16"))),
        # 3. crashes and wrong results with valid files
        ("3 generate with NaN samples in the audio", cli("generate", "--image", face, "--audio", inputs / "nan.wav",
                                                        "--weights", w, "--out", "x.mp4"), ["x.mp4"], RUN_LIMIT),
        *([("3 5.1 soundtrack vs ffmpeg -ac 2", lib(lambda work: soundtrack_peak(work)))] if "s51" in files else []),
        ("3 generate, 1x1 image", cli("generate", "--image", inputs / "tiny_1x1.png", "--audio", speech,
                                      "--weights", w, "--out", "x.mp4")),
        ("3 generate, 2x2 image", cli("generate", "--image", inputs / "tiny_2x2.png", "--audio", speech,
                                      "--weights", w, "--out", "x.mp4")),
        ("3 generate, 1x1000 image", cli("generate", "--image", inputs / "tiny_1x1000.png", "--audio", speech,
                                         "--weights", w, "--out", "x.mp4")),
        ("3 generate, float image in 0..255", lib(lambda work: generate(
            small.astype(np.float32), speech, models, out_path=work / "x.mp4"))),
        ("3 pose --fps 0", cli("pose", "--still", "--fps", "0", "--out", "o.json")),
        ("3 pose --still --frames 0", cli("pose", "--still", "--frames", "0", "--out", "o.json")),
        ("3 pose --still --frames -1", cli("pose", "--still", "--frames", "-1", "--out", "o.json")),
        ("3 pose --plot x.jpg", cli("pose", "--still", "--plot", "x.jpg")),
        ("3 features --out an existing folder", lambda work: (work / "DIR").mkdir() or run_cli(
            ["features", "--audio", speech, "--out", work / "DIR"], work), ["DIR"]),
        *([("3 generate --out equal to --audio", lambda work: shutil.copy(files["speech_mp4"], work / "s.mp4") and
            run_cli(["generate", "--image", face, "--audio", work / "s.mp4", "--weights", w, "--out",
                     work / "s.mp4"], work), ["s.mp4"])] if "speech_mp4" in files else []),
        ("3 pose --input with a pose of 1e300", cli("pose", "--input", inputs / "huge.json", "--out", "o.json")),
        ("3 PoseCurve with a pose of 1e300", lib(lambda work: PoseCurve([[1e300, 0, 0, 0, 0, 280]]))),
        # 4. paths
        ("4 --out is an existing folder x.mp4", lambda work: (work / "x.mp4").mkdir() or run_cli(
            [*gen, "--out", work / "x.mp4"], work), ["x.mp4"]),
        ("4 generate into a read-only folder", lambda work: run_cli([*gen, "--out", readonly(work) / "x.mp4"], work),
         [] if ro_folder else ["readonly"]),
        ("4 features into a read-only folder", lambda work: run_cli(
            ["features", "--audio", speech, "--out", readonly(work) / "f.npy"], work),
         [] if ro_folder else ["readonly"]),
        ("4 pose into a read-only folder", lambda work: run_cli(
            ["pose", "--still", "--out", readonly(work) / "o.json"], work), [] if ro_folder else ["readonly"]),
        ("4 convert into a read-only folder", lambda work: _convert_readonly(work, readonly(work)),
         ["c.pth.tar", *([] if ro_folder else ["readonly"])]),
        ("4 features --out, missing parent folder", cli("features", "--audio", speech, "--out", "new/dir/f.npy"),
         ["new", "new/dir", "new/dir/f.npy"]),
        ("4 pose --out, missing parent folder", cli("pose", "--still", "--out", "new/o.json"), ["new", "new/o.json"]),
        ("4 pose --plot, missing parent folder", cli("pose", "--still", "--plot", "new/p.png"), ["new", "new/p.png"]),
        ("4 --save-intermediates is a file", lambda work: (work / "file").write_text("x") and run_cli(
            [*gen, "--out", work / "x.mp4", "--save-intermediates", work / "file"], work), ["file"]),
        ("4 bad image, 30 min of audio", cli("generate", "--image", inputs / "a_folder", "--audio",
                                             inputs / "thirty_minutes.wav", "--weights", w, "--out", "x.mp4")),
        ("4 --batch-size 0, 30 min of audio", cli("generate", "--image", face, "--audio",
                                                  inputs / "thirty_minutes.wav", "--weights", w, "--out", "x.mp4",
                                                  "--batch-size", "0")),
        # 5. interruption
        ("5 SIGTERM during generate", sigterm_case, [], RUN_LIMIT),
        ("5 Ctrl-C during generate --save-intermediates", sigint_intermediates,
         ["inter", "inter/features.npy", "inter/poses.npy", "inter/source.png", "inter/source_kp_value.npy",
          "inter/source_kp_jacobian.npy"], RUN_LIMIT),
        ("5 error while rendering with intermediates", lib(error_during_render),
         ["inter", "inter/features.npy", "inter/poses.npy", "inter/source.png", "inter/source_kp_value.npy",
          "inter/source_kp_jacobian.npy"], RUN_LIMIT),
        # 6. security
        ("6 Pose Load, absolute path to a secret", lib(node_secret(str(inputs / "secret.csv")))),
        ("6 Pose Load, ../ path to a secret", lib(node_secret("../" + inputs.name + "/secret.csv"))),
        ("6 Pose Load, secret file in the input folder", lib(node_secret("secret.csv"))),
        ("6 Pose Load, the pack's example", lib(lambda work: len(node["Audio2HeadPoseLoad"].execute(
            path="example_openface_pose.csv", fps=25.0)[0]))),
        ("6 Pose Save ../../escaped_pose", lib(pose_save_escape)),
        ("6 Model Loader ../../x.safetensors", lib(loader_escape)),
        ("6 load_models(folder, filename='../x')", lib(lambda work: load_models(inputs, filename="../x.safetensors"))),
        ("6 pickle calling os.system", lib(evil_pickle)),
        ("6 convert given a .safetensors file", cli("convert", w, "out.safetensors")),
        ("6 convert given a folder", cli("convert", inputs / "a_folder", "out.safetensors")),
        ("6 generate given a folder as image", cli("generate", "--image", inputs / "a_folder", "--audio", speech,
                                                   "--weights", w, "--out", "x.mp4")),
        # 7. wrong types
        ("7 generate(models=None)", lib(lambda work: generate(small, speech, None))),
        ("7 generate(models='weights.safetensors')", lib(lambda work: generate(small, speech, str(w)))),
        ("7 batch_size='4'", lib(lambda work: generate(small, speech, models, PipelineConfig(batch_size="4")))),
        ("7 batch_size=2.5", lib(lambda work: generate(small, speech, models, PipelineConfig(batch_size=2.5)))),
        ("7 crop=(1, 2, 3) (a bad tuple)", lib(lambda work: generate(small, speech, models,
                                                                      PipelineConfig(crop=(1, 2, 3))))),
        ("7 feather=nan", lib(lambda work: generate(small, speech, models, PipelineConfig(feather=math.nan)))),
        ("7 crf=-5", lib(lambda work: generate(small, speech, models, PipelineConfig(crf=-5)))),
        ("7 crf=99", lib(lambda work: generate(small, speech, models, PipelineConfig(crf=99)))),
        ("7 pose_curve as an ndarray", lib(lambda work: generate(small, speech, models,
                                                                  pose_curve=np.zeros((10, 6))))),
        ("7 features as an ndarray", lib(lambda work: generate(small, speech, models,
                                                                features=np.zeros((40, 41))))),
        ("7 load_models(None)", lib(lambda work: load_models(None))),
        ("7 Generator, keypoints swapped", lib(keypoints_swapped)),
        ("7 all-in-one, 10 ms of audio", lib(all_in_one(image_ok, {
            "waveform": torch.zeros(1, 1, 160), "sample_rate": 16000}))),
        ("7 all-in-one, NaN image", lib(all_in_one(torch.full((1, 64, 64, 3), math.nan), speech_dict))),
        ("7 all-in-one, 2-channel image", lib(all_in_one(torch.rand(1, 64, 64, 2), speech_dict))),
        ("7 crop=(0, 0, 64, 64) (a good tuple)", lib(lambda work: generate(
            small, speech, models, PipelineConfig(crop=(0, 0, 64, 64))).num_frames), [], RUN_LIMIT),
    ]
    del comfy
    return chunks


def _without_native_bf16(function):
    import a2h_core.device as device

    original = device.cpu_has_native_bf16
    device.cpu_has_native_bf16 = lambda: False
    try:
        return function()
    finally:
        device.cpu_has_native_bf16 = original


def _convert_readonly(work: Path, folder: Path):
    from a2h_core.io.weights import SUBMODELS

    torch.manual_seed(0)
    state = Audio2HeadModels(ModelConfig.reduced()).state_dict()
    torch.save({name: {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
                for name in SUBMODELS}, work / "c.pth.tar")
    return run_cli(["convert", work / "c.pth.tar", folder / "c.safetensors"], work)


# ------------------------------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the scratch folders here instead of deleting them")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="a2h_probe_")) if args.keep is None else args.keep
    base.mkdir(parents=True, exist_ok=True)
    inputs = base / "inputs"
    inputs.mkdir()
    files = make_inputs(inputs)
    before_inputs = listing(inputs)
    outside_before = set(os.listdir(base.parent))
    outcomes = []
    for number, entry in enumerate(cases(inputs, files)):
        name, call = entry[0], entry[1]
        expected = set(entry[2]) if len(entry) > 2 else set()
        limit = entry[3] if len(entry) > 3 else REFUSAL_LIMIT
        work = base / f"case{number:02d}"
        work.mkdir()
        code, message, seconds = call(work)
        if (work / "readonly").exists():
            (work / "readonly").chmod(0o755)
        left = listing(work) - expected
        problems = []
        if "Traceback" in message or code.startswith("CRASH") or code == "timeout":
            problems.append("crash" if code.startswith("CRASH") else "traceback" if code != "timeout" else "hang")
        if seconds > limit:
            problems.append(f"slow (> {limit:g} s)")
        if left:
            problems.append(f"left {sorted(left)}")
        if SECRET in message or "sk-12345" in message:
            problems.append("echoed a secret")
        outcomes.append(Outcome(name, code, " ".join(message.split()), seconds, "; ".join(problems)))
    if listing(inputs) != before_inputs:
        outcomes.append(Outcome("(inputs folder unchanged)", "-", str(sorted(listing(inputs) - before_inputs)), 0,
                                "a case wrote into the inputs"))
    escaped = set(os.listdir(base.parent)) - outside_before
    if any(name.startswith("escaped_pose") for name in escaped) or (ROOT / "escaped_pose").exists():
        outcomes.append(Outcome("(nothing outside the folders)", "-", str(sorted(escaped)), 0, "wrote outside"))

    width = max(len(o.case) for o in outcomes)
    print(f"{'case':<{width}}  {'exit':>6}  {'seconds':>7}  message")
    for o in outcomes:
        message = o.message if len(o.message) <= 150 else o.message[:147] + "..."
        flag = f"   <-- {o.problem}" if o.problem else ""
        print(f"{o.case:<{width}}  {o.code:>6}  {o.seconds:7.2f}  {message}{flag}")
    failures = [o for o in outcomes if o.problem]
    print(f"\n{len(outcomes)} cases, {len(failures)} failed"
          + ("" if args.keep else f"; scratch folder {base} removed"))
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
