#!/usr/bin/env python3
"""`import --from-mlflow`'s speed: an MLflow SQLite store of N runs made by real MLflow (each
with 3 params, a 10-step metric, a dataset and a registered model version: tests/mlflow_stores.py's
sweep), imported by the CLI into a fresh store, then again (nothing new), on each backend.

    .venv/bin/python bench/mlflow_import.py [--runs 10000] [--cache DIR]

The MLflow store is made once and kept in the cache folder (10,000 runs take MLflow about
10 minutes to log). `make bench` runs it as a section (bench/run.py: 1,000 runs with --quick).
Needs MLflow (the bench extra: mlflow-skinny, sqlalchemy, alembic).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

HERE = Path(__file__).resolve().parent
BUILDER = HERE.parent / "tests" / "mlflow_stores.py"
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ALLOW_FILE_STORE": "true"}


def mlflow_store(cache: Path, runs: int) -> str:
    """The URI of the cached MLflow store of `runs` runs, made if missing."""
    folder = cache / f"mlflow-{runs}"
    done = folder / "made.json"
    uri = f"sqlite:///{folder}/mlflow.db"
    if not done.exists():
        if folder.exists():  # a build that broke off
            for path in sorted(folder.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
        folder.mkdir(parents=True)
        print(f"making an MLflow store of {runs:,} runs with MLflow (once, kept in {folder})", flush=True)
        made = subprocess.run([sys.executable, str(BUILDER), uri, str(folder), f"sweep:{runs}"], cwd=folder,
                              capture_output=True, text=True, env={**os.environ, **ENV})
        if made.returncode:
            raise SystemExit(f"making the MLflow store failed:\n{made.stderr[-2000:]}")
        done.write_text(made.stdout)
    return uri


def timed_import(uri: str, db: Path, backend: str) -> Tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mlmd_exercise", "import", "--from-mlflow", uri, "--db", str(db)],
                          capture_output=True, text=True, env={**os.environ, **ENV, "MLMD_BACKEND": backend})
    if done.returncode:
        raise SystemExit(f"import --from-mlflow failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - began, done.stdout.splitlines()[0]


def mlflow_rows(quick: bool, cache: Path) -> List[tuple]:
    """bench/run.py's rows: (what, reference, mlmd backend, native backend, ratio, target, met)."""
    runs = 1000 if quick else 10000
    uri = mlflow_store(cache, runs)
    first, again = {}, {}
    for backend in ("mlmd", "native"):
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            db = Path(tmp) / "metadata.db"
            first[backend], _ = timed_import(uri, db, backend)
            again[backend], line = timed_import(uri, db, backend)
            assert line.startswith("imported 0 runs"), line
    return [(f"import --from-mlflow {runs:,} runs (3 params, 10-step metric, dataset, registered version)", "",
             f"{runs / first['mlmd']:,.0f} runs/s", f"{runs / first['native']:,.0f} runs/s", "", "", ""),
            (f"import --from-mlflow again: nothing new of {runs:,} runs", "", f"{again['mlmd']:.1f} s",
             f"{again['native']:.1f} s", "", "", "")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--cache", default=str(HERE / ".cache"))
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    uri = mlflow_store(cache, args.runs)
    for backend in ("mlmd", "native"):
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            db = Path(tmp) / "metadata.db"
            seconds, line = timed_import(uri, db, backend)
            print(f"{backend}: {line}  ({args.runs / seconds:,.0f} runs/s, whole command)")
            seconds, line = timed_import(uri, db, backend)
            print(f"{backend}: {line}  (again: {seconds:.1f} s)")
    print(json.dumps({"runs": args.runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
