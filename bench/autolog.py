"""What `mx.autolog()` adds to a scikit-learn fit (not part of make test).

    .venv/bin/python bench/autolog.py [--repeats N] [--rows N]

Fits a LogisticRegression, and a Pipeline of a StandardScaler and one, on iris (150 rows, 4
features, a pandas DataFrame) and on `--rows` rows (default 100,000) of 20 features
(make_classification, a DataFrame), N times each with autolog off and on, alternately, into a
fresh SQLite store in a temporary folder with the default backend ($MLMD_BACKEND chooses), and
prints the median fit with and without, the difference, and the parts of it that grow with the
data: fingerprinting X and y, and the training score (a predict over the training data). Also
the one-time cost of `mx.autolog()` itself (importing every estimator's module, wrapping them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mlmd_exercise as mx
from mlmd_exercise.integrations import data as autolog_data


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def datasets(rows: int):
    frame = load_iris(as_frame=True).frame
    yield "iris, 150 rows x 4", frame.drop(columns="target"), frame["target"]
    X, y = make_classification(n_samples=rows, n_features=20, n_informative=10, random_state=0)
    yield f"{rows:,} rows x 20", pd.DataFrame(X, columns=[f"f{i}" for i in range(20)]), pd.Series(y, name="y")


MODELS = {
    "LogisticRegression": lambda: LogisticRegression(max_iter=200),
    "Pipeline(scaler, LogisticRegression)": lambda: Pipeline(
        [("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=200))]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    folder = Path(tempfile.mkdtemp(prefix="autolog-bench-"))
    store = folder / "metadata.db"
    models = folder / "models"
    on = _timed(lambda: mx.autolog(store, model_dir=models))
    mx.autolog(disable=True)
    again = _timed(lambda: mx.autolog(store, model_dir=models))
    mx.autolog(disable=True)
    backend = type(mx.open_store(store).backend).__module__.split(".")[-2]  # store.mlmd.backend -> mlmd
    print(f"Python {sys.version.split()[0]}, the {backend} backend, SQLite")
    print(f"mx.autolog() itself: {_ms(on)} the first time in a process, {_ms(again)} again")
    print(f"median of {args.repeats} fits each, autolog off and on alternately:")
    for label, X, y in datasets(args.rows):
        for name, make in MODELS.items():
            plain, logged = [], []
            for _ in range(args.repeats):
                plain.append(_timed(lambda: make().fit(X, y)))
                mx.autolog(store, model_dir=models)
                logged.append(_timed(lambda: make().fit(X, y)))
                mx.autolog(disable=True)
            without, with_ = statistics.median(plain), statistics.median(logged)
            print(f"  {label:18}  {name:38}  off {_ms(without):>10}  on {_ms(with_):>10}  "
                  f"+{_ms(with_ - without):>9}  ({(with_ / without - 1) * 100:+.0f}%)")
        model = LogisticRegression(max_iter=200).fit(X, y)
        hashing = statistics.median(_timed(lambda: (autolog_data.describe(X), autolog_data.describe(y)))
                                    for _ in range(args.repeats))
        scoring = statistics.median(_timed(lambda: model.score(X, y)) for _ in range(args.repeats))
        print(f"  {label:18}  of which: fingerprinting X and y {_ms(hashing)}, the training score {_ms(scoring)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
