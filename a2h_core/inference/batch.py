"""Batch jobs: many (image, audio) rows rendered with the models loaded once, on one machine or over a Ray cluster.

A manifest is a CSV file with a header row, or a JSON-lines file (.jsonl), with the columns / keys
    image, audio, out            required (paths; relative ones are relative to the manifest's folder)
    pose_curve, crop, dtype      optional (a curve file; auto, none or x,y,w,h; fp32, bf16 or fp16)
Rows whose output already exists are skipped: outputs are written under a temporary name and renamed when complete,
so an existing file is a finished one and a rerun resumes where the last run stopped. A failed row is recorded in
the report and the batch goes on.

With Ray (`run_batch(..., ray_address=...)`, optional: `pip install ray`), each worker is an actor that loads the
models once and renders rows as they come: one actor per GPU, or one per `threads` CPUs on machines without one.
"""
from __future__ import annotations

import csv
import json
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from a2h_core.errors import Audio2HeadError
from a2h_core.inference.pipeline import PipelineConfig, checked_config, generate
from a2h_core.io.weights import load_models
from a2h_core.paths import atomic_output, checked_output_file
from a2h_core.pose import load_pose_curve

COLUMNS = ("image", "audio", "out", "pose_curve", "crop", "dtype")
REQUIRED = ("image", "audio", "out")
DTYPES = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class BatchRow:
    """One job of a manifest. `line`: its line in the manifest (1 = the first line of the file)."""

    line: int
    image: str
    audio: str
    out: str
    pose_curve: str | None = None
    crop: str | None = None
    dtype: str | None = None


@dataclass
class RowResult:
    """What happened to one row: "done", "skipped" (its output existed) or "failed" (with the error's one line)."""

    line: int
    out: str
    status: str
    error: str | None = None
    seconds: float = 0.0


def read_manifest(path: str | os.PathLike) -> list[BatchRow]:
    """The rows of a CSV (with a header) or JSON-lines manifest; Audio2HeadError naming the line for a bad row."""
    path = Path(path)
    if not path.is_file():
        raise Audio2HeadError(f"manifest {str(path)!r} does not exist: check the path")
    base = path.parent
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise Audio2HeadError(f"cannot read the manifest {str(path)!r} ({exc})") from None
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise Audio2HeadError(f"manifest {path.name} line {number}: not JSON ({exc.msg})") from None
            if not isinstance(entry, dict):
                raise Audio2HeadError(f"manifest {path.name} line {number}: expected a JSON object with image, "
                                      "audio and out")
            entries.append((number, entry))
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None:
            raise Audio2HeadError(f"manifest {path.name} is empty: give a header line image,audio,out[,pose_curve,"
                                  "crop,dtype] and one row per video")
        entries = [(reader.line_num, {k.strip(): v for k, v in row.items() if k}) for row in reader]
    else:
        raise Audio2HeadError(f"manifest {str(path)!r} must end in .csv or .jsonl")
    rows = []
    for number, entry in entries:
        unknown = sorted(set(entry) - set(COLUMNS))
        if unknown:
            raise Audio2HeadError(f"manifest {path.name} line {number}: unknown column(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(COLUMNS)}")
        values = {key: (str(value).strip() if value is not None else "") for key, value in entry.items()}
        missing = [key for key in REQUIRED if not values.get(key)]
        if missing:
            raise Audio2HeadError(f"manifest {path.name} line {number}: no {' or '.join(missing)}")
        if values.get("dtype") and values["dtype"] not in DTYPES:
            raise Audio2HeadError(f"manifest {path.name} line {number}: dtype must be one of {', '.join(DTYPES)}, "
                                  f"got {values['dtype']!r}")
        for key in ("image", "audio", "out", "pose_curve"):
            if values.get(key):
                values[key] = str(base / Path(values[key]).expanduser())
        rows.append(BatchRow(line=number, **{key: values.get(key) or None for key in COLUMNS}))
    outs = {}
    for row in rows:
        resolved = os.path.normpath(os.path.abspath(row.out))
        if resolved in outs:
            raise Audio2HeadError(f"manifest {path.name}: lines {outs[resolved]} and {row.line} write the same "
                                  f"file {row.out!r}")
        outs[resolved] = row.line
    if not rows:
        raise Audio2HeadError(f"manifest {path.name} has no rows")
    return rows


def row_config(row: BatchRow, config: PipelineConfig) -> PipelineConfig:
    """The run's settings with the row's own crop and dtype."""
    changes = {key: getattr(row, key) for key in ("crop", "dtype") if getattr(row, key)}
    return checked_config(replace(config, **changes))


def render_row(row: BatchRow, models, config: PipelineConfig) -> RowResult:
    """Render one row (never raises for a bad row: the error's one line goes into the result)."""
    start = time.perf_counter()
    if Path(row.out).is_file():
        return RowResult(row.line, row.out, "skipped")
    try:
        curve = load_pose_curve(row.pose_curve) if row.pose_curve else None
        generate(row.image, row.audio, models, row_config(row, config), pose_curve=curve, out_path=row.out)
    except Audio2HeadError as exc:
        return RowResult(row.line, row.out, "failed", str(exc), time.perf_counter() - start)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a bug or an unforeseen failure: recorded, and the batch goes on
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return RowResult(row.line, row.out, "failed", f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:"
                                                      f"{where.lineno})", time.perf_counter() - start)
    return RowResult(row.line, row.out, "done", None, time.perf_counter() - start)


def write_report(results: list[RowResult], path: str | os.PathLike) -> Path:
    """One JSON object per row (line, out, status, error, seconds), written atomically."""
    path = checked_output_file(path, "report", suffixes=(".jsonl",))
    with atomic_output(path, "report") as temp:
        temp.write_text("".join(json.dumps(asdict(result)) + "\n" for result in sorted(results, key=lambda r: r.line)))
    return path


def run_batch(rows: list[BatchRow], weights: str | os.PathLike, config: PipelineConfig,
              progress: Callable[[int, int, RowResult], None] | None = None,
              ray_address: str | None = None, threads: int | None = None,
              log: Callable[[str], None] | None = None) -> list[RowResult]:
    """Render every row; returns one result per row, in the order they finished.

    progress(rows finished, rows in all, the last result). threads: torch's CPU threads per worker (sequentially:
    None keeps torch's default). ray_address: None runs here; "local" starts a Ray instance on this machine; else
    the address of a running cluster ("auto", "ray://host:10001", ...).
    """
    config = checked_config(config)
    say = log or (lambda message: None)
    todo = [row for row in rows if not Path(row.out).is_file()]
    results = [RowResult(row.line, row.out, "skipped") for row in rows if Path(row.out).is_file()]
    if results:
        say(f"{len(results)} of {len(rows)} rows already have their output: skipped")
    for result in results:
        if progress is not None:
            progress(len(results), len(rows), result)
    if not todo:
        return results
    if ray_address is None:
        stream = _sequential(todo, weights, config, threads, say)
    else:
        stream = _on_ray(todo, weights, config, ray_address, threads, say)
    for result in stream:
        results.append(result)
        if progress is not None:
            progress(len(results), len(rows), result)
    return results


def _sequential(rows: list[BatchRow], weights, config: PipelineConfig, threads: int | None,
                say: Callable[[str], None]) -> Iterator[RowResult]:
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        say(f"loading weights from {weights}")
        models = load_models(weights, device=config.device or "cpu")
        for row in rows:
            yield render_row(row, models, config)
    finally:
        torch.set_num_threads(previous)


class _Worker:
    """A Ray actor's body: the models loaded once, then rows rendered one after another."""

    def __init__(self, weights, config: PipelineConfig, threads: int | None, device: str):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.config = replace(config, device=device)
        self.models = load_models(weights, device=device)

    def render(self, row: BatchRow) -> RowResult:
        return render_row(row, self.models, self.config)


def _on_ray(rows: list[BatchRow], weights, config: PipelineConfig, address: str, threads: int | None,
            say: Callable[[str], None]) -> Iterator[RowResult]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise Audio2HeadError("--ray needs Ray, an optional extra: pip install ray (on every machine of the "
                              "cluster), or run without --ray") from None
    library_root = str(Path(__file__).resolve().parents[2])
    started_here = not ray.is_initialized()
    if started_here:
        runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
            [library_root, *filter(None, [os.environ.get("PYTHONPATH")])])}}
        say(f"connecting to Ray ({'a new local instance' if address == 'local' else address})")
        try:
            ray.init(address=None if address == "local" else address, runtime_env=runtime_env,
                     include_dashboard=False, log_to_driver=False)
        except Exception as exc:  # ConnectionError, ValueError for a malformed address, ...
            raise Audio2HeadError(f"cannot start or reach Ray at {address!r} ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}); check the address (ray status "
                                  "on the head machine) or run without an address for a local instance") from None
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        wants_gpu = str(config.device or "cpu").startswith("cuda")
        if wants_gpu and gpus:
            count, options, device = gpus, {"num_gpus": 1}, "cuda"
        else:
            if wants_gpu:
                say("the Ray cluster reports no GPU: the rows run on CPU workers")
            threads = threads or 1
            count, options, device = max(1, int(resources.get("CPU", 1)) // threads), {"num_cpus": threads}, "cpu"
        count = min(count, len(rows))
        say(f"{count} Ray worker(s), one per {'GPU' if device == 'cuda' else f'{threads} CPU thread(s)'}")
        actor = ray.remote(**options)(_Worker)
        workers = [actor.remote(str(weights), config, threads if device == "cpu" else None, device)
                   for _ in range(count)]
        pool = ActorPool(workers)
        yield from pool.map_unordered(lambda worker, row: worker.render.remote(row), rows)
    finally:
        if started_here:
            ray.shutdown()
