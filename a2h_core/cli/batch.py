"""`python -m a2h_core batch`: every row of a manifest rendered with the models loaded once; here or on Ray."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from a2h_core.cli.progress import ProgressBar
from a2h_core.config import MAX_BATCH_SIZE
from a2h_core.device import check_compute_dtype, parse_device
from a2h_core.errors import Audio2HeadError
from a2h_core.inference.batch import COLUMNS, read_manifest, run_batch, write_report
from a2h_core.inference.pipeline import PipelineConfig, checked_config

EXIT_ROWS_FAILED = 1  # the batch ran to the end, but some rows failed (see the report)


def add_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "batch", help="many image + audio rows (CSV or JSONL manifest) -> MP4s, models loaded once; --ray for a "
                      "cluster",
        description="Render every row of a manifest: a CSV file with a header, or JSON lines, with the columns "
                    f"{', '.join(COLUMNS)} (the first three required; relative paths are relative to the manifest). "
                    "Rows whose output exists are skipped, so a rerun resumes; a failed row is written to the "
                    "report and the batch goes on.")
    parser.add_argument("manifest", type=Path, help="the manifest (.csv or .jsonl)")
    parser.add_argument("--weights", required=True,
                        help="as for generate: a weights file, a folder holding one, or a Hub repo id (with --ray: "
                             "a path every machine can read, or a Hub repo id)")
    parser.add_argument("--report", type=Path,
                        help="where to write the report, one JSON object per row (default: MANIFEST.report.jsonl)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps; with --ray: cpu or cuda")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="precision of rows without their own dtype (default fp32)")
    parser.add_argument("--crop", default="auto", metavar="auto|none|X,Y,W,H",
                        help="crop of rows without their own crop (default auto)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"frames per generator pass, 1 to {MAX_BATCH_SIZE} (default: 4 on a CPU, from the free "
                             "memory on a GPU)")
    parser.add_argument("--watermark", metavar="TEXT", help="visible mark on every frame (see generate)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads per worker (default: torch's default; with --ray on CPUs: 1, one worker "
                             "per N CPUs of the cluster)")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="distribute the rows over Ray (optional extra: pip install ray): without ADDRESS a "
                             "local instance on this machine, else a cluster's address (auto, ray://HOST:10001)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    config = checked_config(PipelineConfig(device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                                           crop=args.crop, watermark=args.watermark))
    if args.ray is None:
        check_compute_dtype(parse_device(args.device), args.dtype, "--dtype")
    if args.threads is not None and args.threads < 1:
        raise Audio2HeadError(f"--threads must be 1 or more, got {args.threads}")
    rows = read_manifest(args.manifest)
    report = args.report or args.manifest.with_name(args.manifest.name + ".report.jsonl")
    bar = ProgressBar("Rows", unit="rows")

    def progress(done, total, result):
        if result.status == "failed":
            print(f"\nline {result.line} failed: {result.error}", file=sys.stderr)
        bar(done, total)

    results = run_batch(rows, args.weights, config, progress=progress, ray_address=args.ray, threads=args.threads,
                        log=lambda message: print(message, file=sys.stderr))
    write_report(results, report)
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    print(f"{counts['done']} rendered, {counts['skipped']} skipped (output existed), {counts['failed']} failed; "
          f"report: {report}")
    return EXIT_ROWS_FAILED if counts["failed"] else 0
