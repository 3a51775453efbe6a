"""Time of a default `jetstream preview` against the 1M-client benchmark warehouse
(target: under 60 s). Writes benchmarks/results/preview.json.

    python -m benchmarks.preview_bench [--clients 1000000]

The preview runs as the user runs it (a subprocess of the real CLI) with its defaults: a
1% deterministic sample of enrolled clients, a 3-day analysis window ending at the last
date with telemetry, the `day` period. It reads a fresh copy of the cached synthetic
warehouse (the analysis benchmark's), so scratch tables never touch the cache.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.analysis_bench import (
    DATA_DIR,
    dataset_params,
    demo_paths,
    ensure_dataset,
    machine,
    working_copy,
)

RESULTS = Path(__file__).resolve().parent / "results" / "preview.json"
SLUG = "demo-sidebar-redesign"
TARGET_SECONDS = 60.0


def run(clients: int, out_dir: Path) -> dict:
    dataset, generated = ensure_dataset(dataset_params(clients))
    uri = working_copy(dataset, DATA_DIR / f"preview-{dataset.name}")
    experiments, repo = demo_paths()
    argv = [
        sys.executable,
        "-m",
        "jetstream.cli",
        "preview",
        "--slug",
        SLUG,
        # the synthetic enrollment period starts here; everything else is the default
        "--start-date",
        "2026-01-05",
        "--experiments",
        experiments,
        "--config-repo",
        str(repo),
        "--warehouse",
        uri,
        "--out",
        str(out_dir),
        "--sql-output-dir",
        str(out_dir / "sql"),
        "--yes",
    ]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=None)
    seconds = time.monotonic() - started
    sql_files = sorted((out_dir / "sql").glob("*.sql"))
    return {
        "machine": machine(),
        "clients": clients,
        "command": " ".join(argv[2:]),
        "seconds": round(seconds, 2),
        "target_seconds": TARGET_SECONDS,
        "meets_target": seconds < TARGET_SECONDS,
        "exit_code": proc.returncode,
        "sql_files": len(sql_files),
        "dataset_generated_seconds": generated,
        "output_tail": proc.stdout[-2000:],
        "stderr_tail": proc.stderr[-2000:] if proc.returncode else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.preview_bench")
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    work = DATA_DIR / "preview-output"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    result = run(args.clients, work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"preview of {SLUG} at {args.clients:,} clients: {result['seconds']} s "
        f"(exit {result['exit_code']}) -> {args.out}"
    )
    return 0 if result["exit_code"] in (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
