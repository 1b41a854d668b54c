#!/usr/bin/env python3
"""`make bench`: mlmd_exercise against raw MLMD and the exercise's ORM, side by side.

    python bench/run.py [--quick] [--cache DIR] [--history-only | --explorer-only | --mlflow-only | --curve-only |
                         --servers-only]

Each measurement runs in a process of its own (so that no two SQLite libraries
ever share a file in one process, and start-up is measured cold), after a
warm-up, several times; the table shows medians with min-max, the ratios, and
whether each target is met. Stores of 1k to 200k runs are built once with the
bulk path and kept in the cache directory. --quick: smaller sizes, fewer repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Optional, Tuple
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
CLI = str(Path(PYTHON).with_name("mlmd-exercise"))
CHAIN = 25  # runs per lineage chain: a model is the next run's input, so 20 hops exist


BACKENDS = ("mlmd", "native")  # the package's two backends, measured side by side


def backend_env(backend: Optional[str]) -> Optional[dict]:
    """The environment that makes a child (and the commands it starts) open stores with
    `backend` ($MLMD_BACKEND); None (inherit) for the references."""
    return None if backend is None else {**os.environ, "MLMD_BACKEND": backend}


def child(what: str, *args, backend: Optional[str] = None, extra: Optional[dict] = None) -> dict:
    """Runs `run.py --child WHAT ARGS` (with `backend` chosen by $MLMD_BACKEND, and `extra`
    variables) and returns the JSON it prints."""
    env = backend_env(backend)
    if extra:
        env = {**(env or os.environ), **extra}
    proc = subprocess.run([PYTHON, __file__, "--child", what, *map(str, args)],
                          capture_output=True, text=True, timeout=1800, env=env)
    if proc.returncode:
        raise SystemExit(f"bench step {what} {args} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# -- measurements, each run in a child process ------------------------------------------------


def _record_ours(store: Path, workdir: Path, runs: int, warmup: int, cpu: Optional[list] = None,
                 after: Optional[Callable[[], None]] = None) -> list:
    """Seconds per run recorded through the API into `store`: a dataset in, a model out.
    `cpu` gets each run's CPU seconds; `after` is called after each run, untimed."""
    import mlmd_exercise as mx

    tracker = mx.Tracker(store)
    for i in range(warmup + runs):
        (workdir / f"d{i}.csv").write_text(f"data {i}")
        (workdir / f"m{i}.joblib").write_text(f"model {i}")
    times = []
    for i in range(warmup + runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        with tracker.execution("Trainer", experiment="bench",
                               inputs={"examples": tracker.dataset(workdir / f"d{i}.csv")}) as run:
            run.log_model(workdir / f"m{i}.joblib", name="M")
        times.append(time.perf_counter() - start)
        if cpu is not None:
            cpu.append(time.process_time() - start_cpu)
        if after is not None:
            after()
    tracker.store.close()
    return times


def _log_writes(writes: list) -> Callable[[], None]:
    """Makes the native SQLite dialect keep every statement that writes, into writes[-1];
    returns what puts the dialect back as it was."""
    from mlmd_exercise.store.native import sqlite as dialect
    from mlmd_exercise.store.native.sql import insert_sql

    run, insert = dialect.SqliteDb.run, dialect.SqliteDb.insert

    def logged_run(self, sql, *values):
        if not sql.lstrip().upper().startswith("SELECT") and writes:
            writes[-1].append((sql, values, False))
        return run(self, sql, *values)

    def logged_insert(self, table, columns, rows, ids=False, ignore=False):
        if rows and writes:
            writes[-1].append((insert_sql(table, columns, ignore), [tuple(r) for r in rows], True))
        return insert(self, table, columns, rows, ids, ignore)

    dialect.SqliteDb.run, dialect.SqliteDb.insert = logged_run, logged_insert

    def unlog() -> None:
        dialect.SqliteDb.run, dialect.SqliteDb.insert = run, insert
    return unlog


def same_rows_floor(runs: int, warmup: int) -> dict:
    """The floor under recording a run: the very rows the native backend writes for each run
    (its INSERTs, UPDATEs and DELETEs, values and all), in the same transactions (BEGIN
    IMMEDIATE ... COMMIT, as many), sent with bare sqlite3 into a copy of the store as it was
    before the first run: no reads, no Python above the driver, the same syncs. Each run's
    floor is sent right after the run itself, so that both meet the same load on a shared
    disk; the ratio is the median of each pair's."""
    import sqlite3

    os.environ["MLMD_BACKEND"] = "native"
    workdir = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    try:
        import mlmd_exercise as mx

        mx.Tracker(workdir / "metadata.db").store.close()  # the schema, as a first open makes it
        for suffix in ("", "-wal"):
            if (workdir / f"metadata.db{suffix}").exists():
                shutil.copyfile(workdir / f"metadata.db{suffix}", workdir / f"floor.db{suffix}")
        con = sqlite3.connect(workdir / "floor.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        writes: list = [[]]
        floor: list = []
        statements: list = []
        commits: list = []

        def replay() -> None:  # the run just recorded, as bare sqlite3
            done = writes.pop()
            start = time.perf_counter()
            for sql, values, many in done:
                (con.executemany if many else con.execute)(sql, values)
            floor.append(time.perf_counter() - start)
            statements.append(len(done))
            commits.append(sum(1 for sql, _, _ in done if sql == "COMMIT"))
            writes.append([])

        _log_writes(writes)
        cpu: list = []
        ours = _record_ours(workdir / "metadata.db", workdir, runs, warmup, cpu, replay)
        con.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    pairs = [o / f for o, f in zip(ours[warmup:], floor[warmup:])]
    return {"floor": summary([t * 1000 for t in floor[warmup:]]), "ours": summary([t * 1000 for t in ours[warmup:]]),
            "ratio": statistics.median(pairs), "cpu": summary([t * 1000 for t in cpu[warmup:]]),
            "statements": statistics.median(statements[warmup:]), "commits": statistics.median(commits[warmup:])}


def _server_store(base: str) -> str:
    """A new store's address on the server at `base`: in plain on PostgreSQL, where the test
    server takes TLS too, since ml-metadata's libpq has no TLS: each backend on the same footing."""
    return base + f"bench_{uuid.uuid4().hex[:10]}" + ("?sslmode=disable" if base.startswith("postgres") else "")


def record_server(base: str, runs: int, warmup: int) -> dict:
    """Seconds per run recorded through the API into a new store on the server at `base`
    (`postgresql://user:pw@host:port/`), its database made for it (a throwaway server's)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    try:
        times = _record_ours(_server_store(base), workdir, runs, warmup)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"ms": [t * 1000 for t in times[warmup:]]}


# The ways a run is recorded on each server, side by side: (label, $MLMD_BACKEND, $MLMD_PG_DRIVER);
# the first is the native backend as it is chosen by default, whose target is <= 0.7x ml-metadata's.
SERVER_WAYS = {
    "postgresql": (("native (psycopg)", "native", "psycopg"), ("native (pg8000)", "native", "pg8000"),
                   ("ml-metadata", "mlmd", None)),
    "mysql": (("native (PyMySQL)", "native", None), ("ml-metadata", "mlmd", None)),
}
SERVER_TITLES = {"postgresql": "PostgreSQL", "mysql": "MySQL"}
SERVER_BASES = (("postgresql", "MLMD_TEST_POSTGRES"), ("mysql", "MLMD_TEST_MYSQL"))  # scripts/with-servers sets them


def all_server_rows(quick: bool) -> list:
    """`server_rows` of each server that scripts/with-servers started (a row saying so if none),
    then its deep walk (`server_walk_rows`)."""
    return [row for server, variable in SERVER_BASES
            for row in (server_rows(server, os.environ.get(variable), 100 if quick else 500)
                        + server_walk_rows(server, os.environ.get(variable), 2000 if quick else 200000))]


def _shell_client(server: str, address: str, sql: str) -> Tuple[list, dict]:
    """The command line and environment that run `sql` in the server's own shell client
    (psql, mariadb), printing its rows, as the sqlite3 shell is the SQLite reference's: the
    password in the environment, not the command line."""
    loc = urlsplit(address)
    env = {**os.environ}
    if server == "postgresql":
        env["PGPASSWORD"] = unquote(loc.password or "")
        plain = loc._replace(netloc=f"{loc.username}@{loc.hostname}:{loc.port}").geturl()
        return ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", plain, "-c", sql], env
    env["MYSQL_PWD"] = unquote(loc.password or "")
    # MariaDB stops a recursion at max_recursive_iterations: the reference walks the whole chain.
    return ["mariadb", "-N", "-B", "-u", unquote(loc.username or ""), "-h", str(loc.hostname), "-P", str(loc.port),
            loc.path.lstrip("/"), "-e", f"SET SESSION max_recursive_iterations = 100000000; {sql}"], env


def server_walk_rows(server: str, base: Optional[str], depth: int) -> list:
    """The upstream walk of a `depth`-deep chain (bulk-recorded into a new store on the server
    at `base`) from its newest model, all hops, through the CLI on each backend, against the same
    closure in one recursive query of the server's shell client, its rows printed."""
    title = SERVER_TITLES[server]
    label = f"lineage up, no hop limit, {depth:,}-deep chain on {title}: first line, all, peak memory " \
            f"(reference: one WITH RECURSIVE query, {'psql' if server == 'postgresql' else 'mariadb'})"
    if not base:
        return [(label, "no server: run under scripts/with-servers", "", "", "", "", "")]
    address = _server_store(base)
    built = child("bulk", "ours-deep", address, depth, backend="native")
    # Each at its best: the planner's statistics taken first (a store just filled has none until
    # autovacuum comes by, and PostgreSQL's plan of the reference then scans Event at every level).
    analyze = "ANALYZE" if server == "postgresql" else "ANALYZE TABLE Event, EventPath"
    analyzing, env = _shell_client(server, address, analyze)
    subprocess.run(analyzing, env=env, check=True, capture_output=True)
    start_id = child("newest", address)["id"]
    walked = {b: child("peak", "lineage", address, "--artifact", start_id, "--direction", "upstream", backend=b)
              for b in BACKENDS}
    expected = f"{depth + 1:,} artifacts, {depth:,} executions"
    for b in BACKENDS:
        if walked[b]["code"] or not walked[b]["last"].endswith(expected):
            raise SystemExit(f"lineage of the deep chain on {title} ({b}) ended with '{walked[b]['last']}'")
    command, env = _shell_client(server, address, " ".join(RAW_UPSTREAM.format(start=int(start_id)).split()))
    raw = wall(command, reps=3, env=env)
    native = walked["native"]
    return [(f"build the {depth:,}-deep chain store on {title} (bulk)", "",
             "", f"{built['runs_per_second']:,.0f} runs/s", "", "", ""),
            (label, fmt(raw, "s"),
             *(f"{walked[b]['first_line_s']:.2f} s, {walked[b]['seconds']:.1f} s, {walked[b]['peak_mb']:,.0f} MB"
               for b in BACKENDS),
             f"{native['seconds'] / raw['median']:.1f}x the reference, "
             f"{walked['mlmd']['seconds'] / native['seconds']:.1f}x faster than the mlmd backend",
             "first line <= 0.3 s, all <= 3x the reference, <= 200 MB",
             yes(native["first_line_s"] <= 0.3 and native["seconds"] <= 3 * raw["median"]
                 and native["peak_mb"] <= 200))]


def events_server(base: str, executions: int, reps: int) -> dict:
    """Reading the events of `executions` executions by id (`Backend.events_by_executions`, what a
    walk and `show` ask) from a new store on the server at `base`: ms per read, after a warm-up."""
    import mlmd_exercise as mx
    from mlmd_exercise.records import ExecutionState, Kind, PropertyType
    from mlmd_exercise.store.backend import ContextWrite, ExecutionWrite, NewArtifact, NewEvent

    store = mx.open_store(_server_store(base), create=True)
    backend = store.backend
    at = backend.put_type(Kind.ARTIFACT, "DataSet", {"version": PropertyType.INT})
    et = backend.put_type(Kind.EXECUTION, "Trainer", {})
    ct = backend.put_type(Kind.CONTEXT, "Experiment", {})
    context = ContextWrite(ct, "Experiment", "bench")
    ids, _, _ = backend.put_lineage(
        [ExecutionWrite(et, "Trainer", name=f"r{i}", state=ExecutionState.COMPLETE) for i in range(executions)],
        [NewArtifact(at, "DataSet", f"/data/{i}", {"version": 1}) for i in range(executions)],
        [NewEvent("OUTPUT", ("model",), artifact_index=i, execution_index=i) for i in range(executions)], context)
    times = []
    for i in range(reps + 1):
        start = time.perf_counter()
        found = backend.events_by_executions(ids)
        if i:
            times.append((time.perf_counter() - start) * 1000)
    assert len(found) == executions
    store.close()
    return summary(times)


def server_rows(server: str, base: Optional[str], runs: int, rounds: int = 5) -> list:
    """Recording one run through the Tracker on the `server` ("postgresql" or "mysql") at `base`
    ($MLMD_TEST_POSTGRES, $MLMD_TEST_MYSQL: scripts/with-servers sets them), each way of
    SERVER_WAYS in turn, `rounds` times, each a new store (the same load on each), medians of all
    their runs; and reading 1,000 executions' events, native against ml-metadata."""
    title = SERVER_TITLES[server]
    if not base:
        return [(f"record one run on {title}", "no server: run under scripts/with-servers", "", "", "", "", "")]
    if server == "postgresql":
        try:
            import psycopg  # noqa: F401  (the bench measures both drivers: both must be here)
        except ImportError:
            return [(f"record one run on {title}", "psycopg is not installed here", "", "", "", "", "")]
    ways = SERVER_WAYS[server]
    times: dict = {label: [] for label, _, _ in ways}
    for _ in range(rounds):
        for label, backend, driver in ways:
            extra = {"MLMD_PG_DRIVER": driver} if driver else None
            times[label] += child("record-server", base, runs // rounds, 5, backend=backend, extra=extra)["ms"]
    stats = {label: summary(t) for label, t in times.items()}
    durable = (f"fsync={_server_setting(base, 'fsync')}" if server == "postgresql"
               else "innodb_flush_log_at_trx_commit=" + _server_setting(base, "innodb_flush_log_at_trx_commit"))
    mlmd = stats["ml-metadata"]
    rows = []
    for n, (label, _, _) in enumerate(ways[:-1]):
        ratio = stats[label]["median"] / mlmd["median"]
        rows.append((f"record one run on {title} ({durable}): {label}", "", fmt(mlmd), fmt(stats[label]),
                     f"{ratio:.2f}x ml-metadata", "<= 0.7x ml-metadata" if n == 0 else "",
                     yes(ratio <= 0.7) if n == 0 else ""))
    events = {b: child("events-server", base, 1000, 20, backend=b) for b in BACKENDS}
    ratio = events["native"]["median"] / events["mlmd"]["median"]
    rows.append((f"read the events of 1,000 executions by id on {title}", "", fmt(events["mlmd"]),
                 fmt(events["native"]), f"{ratio:.2f}x ml-metadata", "<= ml-metadata", yes(ratio <= 1)))
    return rows


def _server_setting(base: str, name: str) -> str:
    """A setting of the server at `base` (PostgreSQL's SHOW, MySQL's @@ variable)."""
    import mlmd_exercise as mx

    store = mx.open_store(base + "bench_settings", create=True, backend="native")
    try:
        sql = f"SHOW {name}" if base.startswith("postgresql") else f"SELECT @@{name}"
        return str(store.backend.db.run(sql)[0][0])
    finally:
        store.close()


def record_grown(path: str, runs: int, warmup: int) -> dict:
    """Per-run cost of recording into a copy of the store at `path` (its size is the point:
    the version look-ups by URI, the experiment by name and the steps stay on indexes)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-grown-", dir=Path(path).parent))
    try:
        for suffix in ("", "-wal"):
            if Path(f"{path}{suffix}").exists():
                shutil.copyfile(f"{path}{suffix}", workdir / f"metadata.db{suffix}")
        times = _record_ours(workdir / "metadata.db", workdir, runs, warmup)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return summary([t * 1000 for t in times[warmup:]])


def record_per_run(kind: str, runs: int, warmup: int) -> dict:
    sys.path.insert(0, str(HERE))
    workdir = Path(tempfile.mkdtemp(prefix="bench-record-"))
    times = []
    try:
        if kind == "ours":
            times = _record_ours(workdir / "metadata.db", workdir, runs, warmup)
        elif kind == "sqlite-floor":
            import sqlite3

            con = sqlite3.connect(workdir / "floor.db", isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("CREATE TABLE node (id INTEGER PRIMARY KEY, kind TEXT, uri TEXT)")
            con.execute("CREATE TABLE event (a INT, e INT, kind INT)")
            for i in range(warmup + runs):
                start = time.perf_counter()
                con.execute("BEGIN")
                d = con.execute("INSERT INTO node (kind, uri) VALUES ('DataSet', ?)", (f"d{i}",)).lastrowid
                e = con.execute("INSERT INTO node (kind, uri) VALUES ('Trainer', '')").lastrowid
                m = con.execute("INSERT INTO node (kind, uri) VALUES ('SavedModel', ?)", (f"m{i}",)).lastrowid
                con.executemany("INSERT INTO event VALUES (?, ?, ?)", [(d, e, 3), (m, e, 4)])
                con.execute("COMMIT")
                times.append(time.perf_counter() - start)
        else:
            from reference import OrmRecorder, RawMlmd

            recorder = {"orm": lambda: OrmRecorder(str(workdir / "orm.db")).record_run,
                        "mlmd-six-calls": lambda: RawMlmd(str(workdir / "raw.db")).record_run_six_calls,
                        "mlmd-one-call": lambda: RawMlmd(str(workdir / "raw.db")).record_run_one_call}[kind]()
            for i in range(warmup + runs):
                start = time.perf_counter()
                recorder(i)
                times.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return summary([t * 1000 for t in times[warmup:]] or [0.0])


def chain_runs(n: int, offset: int = 0):
    from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec

    previous = None
    for i in range(offset, offset + n):
        if i % CHAIN == 0 or previous is None:
            previous = ArtifactSpec(f"file:///bench/data/{i}.csv", properties={"split": "train"})
        model = ArtifactSpec(f"file:///bench/models/{i}.joblib", type="SavedModel", properties={"name": "M"})
        yield RunSpec(inputs={"examples": previous}, outputs={"model": model}, params={"C": 1.0})
        previous = model


def deep_chain_runs(n: int):
    """One chain of `n` runs, each warm-started from the previous run's model (run i reads
    model i-1 and writes model i; the first reads a dataset): a walk upstream from its
    newest model is 2n hops."""
    from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec

    previous = ArtifactSpec("file:///bench/data/deep.csv", properties={"split": "train"})
    for i in range(n):
        model = ArtifactSpec(f"file:///bench/deep/{i}.joblib", type="SavedModel", properties={"name": "M"})
        yield RunSpec(inputs={"model" if i else "examples": previous}, outputs={"model": model},
                      params={"C": 1.0})
        previous = model


RUNNING_EVERY = 20  # the 5%-RUNNING store: every 20th run was killed mid-run


def gone_pids(n: int = 50) -> list:
    """Pids of processes that have exited: what killed writers leave behind."""
    pids = []
    for _ in range(n):
        proc = subprocess.Popen(["true"])
        proc.wait()
        pids.append(proc.pid)
    return pids


def running_runs(n: int):
    """chain_runs, but every RUNNING_EVERY-th run is RUNNING, recorded by a process that is
    gone (with its input, without its output), as process.identity() names it."""
    import socket

    from mlmd_exercise import process
    from mlmd_exercise.write.bulk import RunSpec

    host, pids = socket.gethostname(), gone_pids()
    for i, run in enumerate(chain_runs(n)):
        if i % RUNNING_EVERY == RUNNING_EVERY - 1:
            ident = {process.HOST: host, process.PID: pids[i % len(pids)], process.PID_START: 1}
            run = RunSpec(inputs=run.inputs, state="RUNNING", params={**run.params, **ident})
        yield run


BUILT = {"ours": "chain_runs", "ours-running": "running_runs", "ours-deep": "deep_chain_runs"}


def bulk(kind: str, path: str, runs: int) -> dict:
    sys.path.insert(0, str(HERE))
    start = time.perf_counter()
    if kind in BUILT:
        import mlmd_exercise as mx
        from mlmd_exercise.write.bulk import record_runs

        record_runs(mx.Tracker(path, experiment="bench"), globals()[BUILT[kind]](runs))
    else:
        from reference import RawMlmd

        raw = RawMlmd(path)
        for first in range(0, runs, 1000):
            raw.record_runs_bulk(first, min(1000, runs - first))
    elapsed = time.perf_counter() - start
    return {"runs_per_second": runs / elapsed, "seconds": elapsed}


def bulk_floor(runs: int) -> dict:
    """The floor under bulk recording: `record_runs` of `runs` chain runs on the native
    backend, then the very statements it wrote (every INSERT, UPDATE and DELETE, values and
    all, in the same transactions) sent again with bare sqlite3 into a copy of the store as
    it was before: runs a second each way, and their ratio. The statements are taken from a
    first, untimed import into another copy (which also imports the modules the write path
    loads on first use), so that keeping them costs the timed one nothing."""
    import sqlite3

    os.environ["MLMD_BACKEND"] = "native"
    workdir = Path(tempfile.mkdtemp(prefix="bench-bulk-floor-"))
    try:
        import mlmd_exercise as mx
        from mlmd_exercise.write.bulk import record_runs

        tracker = mx.Tracker(workdir / "metadata.db", experiment="bench")
        tracker.store.close()
        for copy in ("logged", "floor"):
            for suffix in ("", "-wal"):
                if (workdir / f"metadata.db{suffix}").exists():
                    shutil.copyfile(workdir / f"metadata.db{suffix}", workdir / f"{copy}.db{suffix}")
        specs = list(chain_runs(runs))  # made before the clock starts, as the floor's rows are
        writes: list = [[]]
        unlog = _log_writes(writes)
        record_runs(mx.Tracker(workdir / "logged.db", experiment="bench"), specs)
        unlog()
        start = time.perf_counter()
        record_runs(mx.Tracker(workdir / "metadata.db", experiment="bench"), specs)
        ours = time.perf_counter() - start
        con = sqlite3.connect(workdir / "floor.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        start = time.perf_counter()
        for sql, values, many in writes[0]:
            (con.executemany if many else con.execute)(sql, values)
        floor = time.perf_counter() - start
        con.close()
        commits = sum(1 for sql, _, _ in writes[0] if sql == "COMMIT")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"runs_per_second": runs / ours, "floor_runs_per_second": runs / floor, "ratio": floor / ours,
            "statements": len(writes[0]), "commits": commits}


def newest_model(store) -> int:
    """The newest artifact's id (the bench's stores end with a model), in a package Store or
    in raw ml-metadata."""
    if hasattr(store, "backend"):
        from mlmd_exercise.store.backend import Query

        [model] = store.backend.artifacts(Query(order="id", limit=1))
        return model.id
    from ml_metadata.metadata_store.metadata_store import ListOptions, OrderByField

    [model] = store.get_artifacts(list_options=ListOptions(limit=1, order_by=OrderByField.ID, is_asc=False))
    return model.id


def lineage(kind: str, path: str, reps: int) -> dict:
    if kind == "ours":
        import mlmd_exercise as mx

        store = mx.open_store(path)
        start_id = newest_model(store)

        def query():
            graph = mx.walk(store, artifact_id=start_id, direction="upstream", hops=20)
            return len(graph.artifacts), len(graph.executions)
    else:
        from ml_metadata.metadata_store import metadata_store
        from ml_metadata.proto import metadata_store_pb2 as pb

        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = path
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
        mlmd = metadata_store.MetadataStore(config)
        start_id = newest_model(mlmd)

        def query():
            options = pb.LineageSubgraphQueryOptions(
                max_num_hops=20, direction=pb.LineageSubgraphQueryOptions.UPSTREAM)
            options.starting_artifacts.filter_query = f"id = {start_id}"
            graph = mlmd.get_lineage_subgraph(options, ["artifacts", "executions", "events"])
            return len(graph.artifacts), len(graph.executions)
    nodes = query()
    for _ in range(5):
        query()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        query()
        times.append((time.perf_counter() - start) * 1000)
    return {**summary(times), "nodes": nodes}


def counts(kind: str, path: str, reps: int) -> dict:
    times, result = [], None
    for i in range(reps + 1):
        start = time.perf_counter()
        if kind == "ours":
            import mlmd_exercise as mx

            if i == 0:  # through the backend ($MLMD_BACKEND), as a caller holding the store counts
                store = mx.open_store(path)
            result = mx.count_by_state(store)
        else:
            from collections import Counter

            from ml_metadata.metadata_store import metadata_store
            from ml_metadata.proto import metadata_store_pb2 as pb

            if i == 0:
                config = pb.ConnectionConfig()
                config.sqlite.filename_uri = path
                config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
                mlmd = metadata_store.MetadataStore(config)
            result = {pb.Execution.State.Name(k): v
                      for k, v in Counter(e.last_known_state for e in mlmd.get_executions()).items()}
        if i:  # the first is the warm-up
            times.append((time.perf_counter() - start) * 1000)
    return {**summary(times), "counts": result}


def states(path: str, reps: int) -> dict:
    """What `states` calls, by address as it does: counts, then the interrupted among RUNNING."""
    import mlmd_exercise as mx
    from mlmd_exercise.read.check import interrupted_ids

    times, result = [], None
    for i in range(reps + 1):
        start = time.perf_counter()
        found = mx.count_by_state(path)
        gone = len(interrupted_ids(path)) if found.get("RUNNING") else 0
        if i:  # the first is the warm-up
            times.append((time.perf_counter() - start) * 1000)
        result = {"counts": found, "interrupted": gone}
    return {**summary(times), **result}


def command_peak(name: str, path: str, *extra) -> dict:
    """`mlmd-exercise NAME --db PATH EXTRA...`: its wall time, the time to its first line of
    output (read as it comes) and its peak memory (max RSS), in a child process."""
    import resource

    command = [name, "--db", path, *map(str, extra)]
    first, last, lines = None, "", 0
    with tempfile.TemporaryFile("w+") as err:  # a pipe could fill and stop the command
        start = time.perf_counter()
        proc = subprocess.Popen([CLI, *command], stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if first is None:
                first = time.perf_counter() - start
            last, lines = line.rstrip("\n"), lines + 1
        code = proc.wait()
        elapsed = time.perf_counter() - start
        if code not in (0, 1):
            err.seek(0)
            raise SystemExit(f"{command}: {err.read()[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return {"seconds": elapsed, "first_line_s": first, "peak_mb": peak, "code": code, "last": last,
            "lines": lines}


def newest(path: str) -> dict:
    """The newest artifact's id in the store at `path`."""
    import mlmd_exercise as mx

    return {"id": newest_model(mx.open_store(path))}


def web(path: str, reps: int) -> dict:
    """The explorer's pages, answered by its WSGI app in this process (server side: no
    network, no browser): each page's median and range, in ms."""
    import io

    import mlmd_exercise as mx
    from mlmd_exercise.web.server import make_app

    store = mx.open_store(path)
    app = make_app(store)
    model = newest_model(store)

    def get(url: str) -> None:
        route, _, query = url.partition("?")
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": route, "QUERY_STRING": query, "SERVER_NAME": "bench",
                   "SERVER_PORT": "0", "HTTP_HOST": "bench", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO()}
        status = []
        b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("200"):
            raise SystemExit(f"{url}: {status[0]}")

    pages = {"runs": "/runs", "runs-filtered": "/runs?state=COMPLETE&type=Trainer&context=1&page=3",
             "node": f"/artifact/{model}", "lineage": f"/lineage/artifact/{model}?direction=both&hops=3",
             "node+lineage": None, "states": "/states"}
    found = {}
    for name, url in pages.items():
        times = []
        for i in range(reps + 1):
            start = time.perf_counter()
            for one in ([pages["node"], pages["lineage"]] if url is None else [url]):
                get(one)
            if i:  # the first is the warm-up
                times.append((time.perf_counter() - start) * 1000)
        found[name] = summary(times)
    return found


def prune_half(path: str, tmp: str) -> dict:
    """Prunes the older half of a copy of the store at `path` (native backend), archiving it
    first; then VACUUM; then imports the archive into an empty store and compares. Seconds
    and bytes of each step."""
    from mlmd_exercise import open_store
    from mlmd_exercise.read.check import check_store
    from mlmd_exercise.store.backend import Query
    from mlmd_exercise.bundle import read_bundle
    from mlmd_exercise.write.bundle_import import import_bundle
    from mlmd_exercise.write.prune import plan_prune, prune

    copy, archive = Path(tmp) / "copy.db", Path(tmp) / "old.bundle"
    shutil.copyfile(path, copy)
    store = open_store(copy, create=True, backend="native")
    total = len(store.backend.executions(Query(order="id", ascending=True)))
    half = store.backend.executions(Query(order="created", ascending=True, id_above=0, limit=total // 2 + 1))
    cutoff = half[-1].when_ms  # the first run of the newer half, and those of its millisecond, stay
    result: dict = {"runs": total, "bytes_before": copy.stat().st_size}
    start = time.perf_counter()
    plan = plan_prune(store, cutoff)
    result["plan_s"] = time.perf_counter() - start
    result["pruned_runs"], result["pruned_artifacts"] = len(plan.executions), len(plan.artifacts)
    result["kept_old_runs"] = len(plan.kept_runs)
    start = time.perf_counter()
    with store.writing():
        removed = prune(store, plan, archive=archive)
    result["prune_with_archive_s"] = time.perf_counter() - start
    result["removed"] = removed
    result["archive_bytes"] = archive.stat().st_size
    result["bytes_after"] = copy.stat().st_size
    left = len(store.backend.executions(Query(order="id", ascending=True)))
    store.backend.close()
    import sqlite3

    start = time.perf_counter()
    con = sqlite3.connect(copy)
    con.execute("VACUUM")
    con.close()
    result["vacuum_s"] = time.perf_counter() - start
    result["bytes_after_vacuum"] = copy.stat().st_size
    result["runs_left"] = left
    start = time.perf_counter()
    target = open_store(Path(tmp) / "restored.db", create=True, backend="native")
    got = import_bundle(target, read_bundle(archive), batch_size=1000)
    result["import_archive_s"] = time.perf_counter() - start
    result["imported_runs"] = got.executions
    result["check_problems"] = len(check_store(open_store(copy, backend="native")))
    return result


def export_runs(path: str, tmp: str, n: int, backend: str) -> dict:
    """Exports the newest `n` runs of the store at `path` to a bundle: seconds and bytes."""
    from mlmd_exercise import open_store
    from mlmd_exercise.store.backend import Query
    from mlmd_exercise.read.export import export_bundle

    store = open_store(path, backend=backend)
    ids = [e.id for e in store.backend.executions(Query(order="created", limit=n))]
    out = Path(tmp) / "export.bundle"
    start = time.perf_counter()
    counts = export_bundle(store, out, ids)
    return {"seconds": time.perf_counter() - start, "bytes": out.stat().st_size, "runs": counts.executions,
            "artifacts": counts.artifacts, "events": counts.events}


def log_loop(kind: str, path: str, steps: int, flush_every: int = 1) -> dict:
    """`steps` values of one metric logged from a loop, each with its step: ours (the default
    backend, or $MLMD_BACKEND) or MLflow's `log_metric` on its default SQLite tracking store,
    in a store of its own at `path`; the loop's seconds."""
    if kind == "mlflow":
        import logging

        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)
        mlflow.set_tracking_uri(f"sqlite:///{path}")
        with mlflow.start_run():
            mlflow.log_metric("warm", 0.0)
            start = time.perf_counter()
            for step in range(steps):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            seconds = time.perf_counter() - start
        return {"seconds": seconds, "per_call_ms": seconds / steps * 1000}
    import mlmd_exercise as mx

    tracker = mx.Tracker(path)
    with tracker.execution(flush_every=flush_every) as run:
        run.log_metric("warm", 0.0)
        start = time.perf_counter()
        for step in range(steps):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run._log.flush()  # what the run's end would write: inside the measured loop
        seconds = time.perf_counter() - start
    kept = len(mx.metric_history(tracker.store, run.id, "loss"))
    if kept != steps:
        raise SystemExit(f"{kept} of {steps} points kept")
    return {"seconds": seconds, "per_call_ms": seconds / steps * 1000}


def curve_page(path: str, points: int, reps: int) -> dict:
    """A run with a `points`-point curve (written in batches), then its explorer page served
    by the WSGI app in this process, as `web` does: the page's median and range in ms."""
    import io

    import mlmd_exercise as mx
    from mlmd_exercise.web.server import make_app

    tracker = mx.Tracker(path)
    with tracker.execution(flush_every=5000) as run:
        for step in range(points):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    del tracker
    store = mx.open_store(path)
    app = make_app(store)
    times = []
    for i in range(reps + 1):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/execution/{run.id}", "QUERY_STRING": "",
                   "SERVER_NAME": "bench", "SERVER_PORT": "0", "HTTP_HOST": "bench", "wsgi.url_scheme": "http",
                   "wsgi.input": io.BytesIO()}
        status = []
        start = time.perf_counter()
        body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if i:
            times.append((time.perf_counter() - start) * 1000)
        if not status[0].startswith("200") or b'class="curve"' not in body:
            raise SystemExit(f"the run page with a {points}-point curve: {status[0]}")
    return summary(times)


def history_rows(quick: bool, tmp: str) -> list:
    """The metric history's figures (issue 20): a loop logging one metric against MLflow's
    log_metric for the same loop, and a run page with a long curve."""
    steps = 2000 if quick else 100000
    rows = []
    flow = child("log", "mlflow", f"{tmp}/mlflow.db", steps)
    ours = {b: child("log", "ours", f"{tmp}/ours-{b}.db", steps, backend=b) for b in BACKENDS}
    batched = {b: child("log", "ours", f"{tmp}/batched-{b}.db", steps, 100, backend=b) for b in BACKENDS}
    for name, found in ((f"log_metric x {steps:,} in a loop, each written at once", ours),
                        (f"log_metric x {steps:,} in a loop, flush_every=100", batched)):
        ratio = found["native"]["seconds"] / flow["seconds"]
        rows.append((name + " (vs MLflow's log_metric, SQLite)",
                     f"{flow['seconds']:.1f} s ({flow['per_call_ms']:.2f} ms a call)",
                     *(f"{found[b]['seconds']:.1f} s ({found[b]['per_call_ms']:.2f} ms)" for b in BACKENDS),
                     f"{ratio:.2f}x MLflow's time (mlmd: {found['mlmd']['seconds'] / flow['seconds']:.2f}x)",
                     "<= 2x MLflow's", "yes" if ratio <= 2 else "NO"))
    points = 10000 if quick else 100000
    page = {b: child("curve", f"{tmp}/curve-{b}.db", points, 3 if quick else 10, backend=b) for b in BACKENDS}
    rows.append((f"ui: a run's page with a {points:,}-point curve", "", fmt(page["mlmd"]), fmt(page["native"]), "",
                 "<= 300 ms", "yes" if page["native"]["median"] <= 300 else "NO"))
    return rows


CHILDREN = {"floor": same_rows_floor, "bulk-floor": bulk_floor, "grown": record_grown, "log": log_loop, "curve": curve_page, "prune": prune_half, "export": export_runs, "record": record_per_run,
            "record-server": record_server, "events-server": events_server, "bulk": bulk, "lineage": lineage, "counts": counts, "web": web,
            "states": states, "peak": command_peak, "newest": newest}


def ui_serving(path: str, reps: int, backend: Optional[str] = None) -> dict:
    """Seconds from starting `mlmd-exercise ui` to its first answered runs page."""
    import http.client
    import re

    times = []
    for i in range(reps + 1):
        start = time.perf_counter()
        proc = subprocess.Popen([CLI, "ui", "--db", str(path), "--no-browser", "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=backend_env(backend))
        try:
            url = re.search(r"http://(\S+?):(\d+)(/\S+)", proc.stdout.readline())
            host, port, address = url.group(1), int(url.group(2)), url.group(3)
            con = http.client.HTTPConnection(host, port, timeout=30)
            con.request("GET", address)
            if con.getresponse().status != 200:
                raise SystemExit("ui did not answer its runs page")
            if i:
                times.append(time.perf_counter() - start)
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
    return summary(times)


LOAD = 200  # requests to the explorer's runs page, one after another and then all at once


def ui_load(path: str, n: int, backend: Optional[str] = None) -> dict:
    """`mlmd-exercise ui` on the store, asked for /runs `n` times one after another, then `n`
    times at once (a thread and a connection each, released together): for each way, the
    answers by status (or the error that came instead), the median and 95th percentile of
    the seconds to an answer, and the seconds in all."""
    import http.client
    import re
    import threading
    from collections import Counter

    proc = subprocess.Popen([CLI, "ui", "--db", str(path), "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=backend_env(backend))
    try:
        url = re.search(r"http://(\S+?):(\d+)(/\S+)", proc.stdout.readline())
        host, port, address = url.group(1), int(url.group(2)), url.group(3)

        def ask() -> tuple:
            start = time.perf_counter()
            try:
                con = http.client.HTTPConnection(host, port, timeout=120)
                con.request("GET", address)
                response = con.getresponse()
                response.read()
                con.close()
                answer = str(response.status)
            except OSError as e:
                answer = type(e).__name__
            return answer, time.perf_counter() - start

        ask()  # warm-up: the first page loads the modules it needs
        found = {}
        start = time.perf_counter()
        found["one after another"] = [ask() for _ in range(n)], time.perf_counter() - start
        results: list = [None] * n
        together = threading.Barrier(n + 1)

        def one(i: int) -> None:
            together.wait()
            results[i] = ask()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        together.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        found["at once"] = results, time.perf_counter() - start
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    out = {}
    for way, (answers, seconds) in found.items():
        times = sorted(t for a, t in answers if a in ("200", "503"))
        out[way] = {"answers": dict(Counter(a for a, _ in answers)), "seconds": seconds,
                    "answered": len(times), "p50": statistics.median(times) if times else None,
                    "p95": statistics.quantiles(times, n=20)[18] if len(times) > 1 else None}
    return out


def load_rows(path: Path, size: int) -> list:
    """The explorer under load: LOAD requests to /runs at once, against the same requests
    one after another, on each backend."""
    found = {b: ui_load(path, LOAD, b) for b in BACKENDS}

    def cell(f: dict) -> str:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(f["answers"].items()))
        spread = f"p50 {f['p50'] * 1000:,.0f} ms, p95 {f['p95'] * 1000:,.0f} ms, " if f["p95"] is not None else ""
        return f"{f['answered']}/{LOAD} answered ({answers}); {spread}{f['seconds']:.1f} s in all"

    alone, together = found["native"]["one after another"], found["native"]["at once"]
    return [
        (f"ui, {size:,} runs: {LOAD} requests to /runs, one after another", "",
         *(cell(found[b]["one after another"]) for b in BACKENDS), "", "", ""),
        (f"ui, {size:,} runs: the same {LOAD} requests at once (reference: one after another, native)",
         cell(alone), *(cell(found[b]["at once"]) for b in BACKENDS),
         f"{together['seconds'] / alone['seconds']:.2f}x the time in all",
         "all answered (200, or 503 past the 30 s bound)",
         "yes" if all(found[b]["at once"]["answered"] == LOAD for b in BACKENDS) else "NO"),
    ]


# -- the suite ----------------------------------------------------------------------------------


# The upstream closure of artifact {start} in one recursive query: artifacts lead to the executions
# that output them (DECLARED_OUTPUT, OUTPUT, INTERNAL_OUTPUT, PENDING_OUTPUT), executions to their
# inputs (DECLARED_INPUT, INPUT, INTERNAL_INPUT), each node once.
RAW_UPSTREAM = """WITH RECURSIVE up(kind, id) AS (SELECT 0, {start} UNION
SELECT 1 - u.kind, CASE WHEN u.kind = 0 THEN a.execution_id ELSE x.artifact_id END FROM up u
LEFT JOIN Event a ON u.kind = 0 AND a.artifact_id = u.id AND a.type IN (1, 4, 6, 7)
LEFT JOIN Event x ON u.kind = 1 AND x.execution_id = u.id AND x.type IN (2, 3, 5)
WHERE a.id IS NOT NULL OR x.id IS NOT NULL) SELECT kind, id FROM up;"""


def build_store(cache: Path, size: int, running: bool = False, deep: bool = False) -> tuple:
    """The cached store of `size` runs, built with the bulk path if missing; `running`:
    the one where every RUNNING_EVERY-th run is RUNNING from a process that is gone;
    `deep`: one chain of `size` runs, each from the previous run's model."""
    name = f"{size}-running" if running else f"{size}-deep" if deep else f"{size}"
    path = cache / f"store-{name}.db"
    if path.exists():
        return path, None
    tmp = cache / f"building-{name}.db"
    for leftover in cache.glob(f"building-{name}.db*"):
        leftover.unlink()
    result = child("bulk", "ours-running" if running else "ours-deep" if deep else "ours", tmp, size)
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{tmp}{suffix}").exists():
            os.replace(f"{tmp}{suffix}", f"{path}{suffix}")
    Path(f"{tmp}.lock").unlink(missing_ok=True)
    return path, result


# The commands whose time and peak memory make the cost curve (`curve_rows`), as arguments
# after `--db STORE`: {out} is a new file's name, {model} the newest model's id.
CURVE = (
    ("ls executions --limit 10", ["ls", "executions", "--limit", "10"]),
    ("ls executions (every run)", ["ls", "executions"]),
    ("ls artifacts (every artifact)", ["ls", "artifacts"]),
    ("states", ["states"]),
    ("check", ["check"]),
    ("lineage --artifact NEWEST", ["lineage", "--artifact", "{model}"]),
    ("export (every run)", ["export", "-o", "{out}"]),
    ("prune --older-than 0s --dry-run", ["prune", "--older-than", "0s", "--dry-run"]),
)


def curve_rows(cache: Path, sizes) -> list:
    """How each command's time and peak memory grow with the store: CURVE's commands, native
    backend, on the cached stores of each size (built if missing), one after another."""
    stores = {size: build_store(cache, size)[0] for size in sizes}
    found = {}
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        for size in sizes:
            model = child("newest", stores[size])["id"]
            for name, args in CURVE:
                out = f"{tmp}/{uuid.uuid4().hex[:8]}.jsonl"
                argv = [a.format(out=out, model=model) for a in args]
                found[name, size] = child("peak", argv[0], stores[size], *argv[1:], backend="native")
                Path(out).unlink(missing_ok=True)
    rows = []
    for name, _ in CURVE:
        cells = [f"{size // 1000}k {found[name, size]['seconds']:.2f} s, {found[name, size]['peak_mb']:,.0f} MB"
                 for size in sizes]
        first, last = found[name, sizes[0]], found[name, sizes[-1]]
        rows.append((f"{name}: time and peak memory at " + " / ".join(f"{s:,}" for s in sizes) + " runs", "", "",
                     "; ".join(cells), f"{last['seconds'] / first['seconds']:.1f}x the time, "
                     f"{last['peak_mb'] / first['peak_mb']:.1f}x the memory", "<= 200 MB",
                     "yes" if last["peak_mb"] <= 200 else "NO"))
    return rows


def syncs_per_run(kind: str, backend: Optional[str] = None, runs: int = 50):
    """Disk syncs (fsync, fdatasync) per recorded run, counted with strace: what a run
    costs on any disk, where milliseconds depend on this one. None without strace."""
    if shutil.which("strace") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace"
        counts = []
        for n in (0, runs):  # the difference removes setup's syncs
            subprocess.run(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(trace),
                            PYTHON, __file__, "--child", "record", kind, str(n), "0"],
                           check=True, capture_output=True, env=backend_env(backend))
            counts.append(sum(1 for line in trace.read_text().splitlines() if "sync(" in line))
    return (counts[1] - counts[0]) / runs


def wall(command, cwd=None, reps=5, env=None) -> dict:
    times = []
    for i in range(reps + 1):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
        if i:
            times.append(time.perf_counter() - start)
    return summary(times)


def copies(command, folder: str, reps: int) -> dict:
    """Seconds per copy of a store, each to a new file (`command(dest)`: the command line)."""
    times = []
    for i in range(reps + 1):
        dest = f"{folder}/copy-{uuid.uuid4().hex[:8]}.db"
        start = time.perf_counter()
        subprocess.run(command(dest), check=True, capture_output=True)
        if i:
            times.append(time.perf_counter() - start)
        os.unlink(dest)
    return summary(times)


def yes(ok: bool) -> str:
    """A row's last column: whether its target was met."""
    return "yes" if ok else "NO"


def fmt(s: dict, unit: str = "ms", digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} {unit} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats: under a minute")
    parser.add_argument("--cache", default=str(HERE / ".cache"), help="where built stores are kept")
    if sys.argv[1:2] == ["--child"]:  # read by hand: a child's arguments may start with "--"
        what, *rest = sys.argv[2:]
        typed = [int(a) if a.isdigit() else a for a in rest]
        print(json.dumps(CHILDREN[what](*typed)))
        return 0
    parser.add_argument("--prune-only", action="store_true",
                        help="only prune half of the biggest store and export 10,000 runs (issue 14)")
    parser.add_argument("--history-only", action="store_true",
                        help="only the metric history's figures: a logging loop against MLflow, a long curve")
    parser.add_argument("--mlflow-only", action="store_true",
                        help="only import --from-mlflow: an MLflow store of 10,000 runs (1,000 with --quick)")
    parser.add_argument("--curve-only", action="store_true",
                        help="only the cost curve: each command's time and peak memory at 1k to 200k runs")
    parser.add_argument("--explorer-only", action="store_true",
                        help=f"only the explorer under load: {LOAD} requests to /runs at once, and one after another")
    parser.add_argument("--servers-only", action="store_true",
                        help="only the figures on PostgreSQL and MySQL ($MLMD_TEST_POSTGRES, $MLMD_TEST_MYSQL): "
                             "recording one run (native on psycopg and on pg8000, on PyMySQL) against "
                             "ml-metadata, reading 1,000 executions' events, the upstream walk of a 200,000-deep chain "
                             "(2,000 with --quick) against one recursive query")
    args = parser.parse_args()
    if args.servers_only:
        found = all_server_rows(args.quick)
        for row in found:
            print("| " + " | ".join(str(c) for c in row) + " |")
        return 0 if all(r[6] != "NO" for r in found) else 1
    if args.prune_only:
        return prune_rows(Path(args.cache), 10000 if args.quick else 200000)
    if args.history_only:
        Path(args.cache).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
            found = history_rows(args.quick, tmp)
        for row in found:
            print("| " + " | ".join(str(c) for c in row) + " |")
        return 0 if all(r[6] != "NO" for r in found) else 1
    if args.mlflow_only:
        from mlflow_import import mlflow_rows

        Path(args.cache).mkdir(parents=True, exist_ok=True)
        for row in mlflow_rows(args.quick, Path(args.cache)):
            print("| " + " | ".join(str(c) for c in row) + " |")
        return 0
    if args.curve_only:
        Path(args.cache).mkdir(parents=True, exist_ok=True)
        found = curve_rows(Path(args.cache), [1000, 10000] if args.quick else [1000, 10000, 100000, 200000])
        for row in found:
            print("| " + " | ".join(str(c) for c in row) + " |")
        return 0 if all(r[6] != "NO" for r in found) else 1
    if args.explorer_only:
        Path(args.cache).mkdir(parents=True, exist_ok=True)
        size = 10000 if args.quick else 200000
        path, _ = build_store(Path(args.cache), size)
        found = load_rows(path, size)
        for row in found:
            print("| " + " | ".join(str(c) for c in row) + " |")
        return 0 if all(r[6] != "NO" for r in found) else 1

    quick = args.quick
    sizes = [1000, 10000] if quick else [1000, 10000, 100000, 200000]
    runs, reps = (30, 10) if quick else (200, 40)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    began = time.time()
    # (what, reference, mlmd backend, native backend, ratio, target, met): the ratio, target
    # and met are the native backend's (the targets are for it)
    rows = []

    def both(what: str, *args) -> dict:
        return {b: child(what, *args, backend=b) for b in BACKENDS}

    print(f"machine: {os.cpu_count()} cores, {sys.platform}, Python {sys.version.split()[0]}; "
          f"{'quick' if quick else 'full'} run", flush=True)
    # The package's bytecode, as an installed package has it (pip compiles at install; an
    # editable install only where Python may write it): without it each cold start compiles
    # the package's modules from source, about 0.07 s here, where ml-metadata's bare import,
    # installed by pip, is measured from its bytecode.
    import compileall

    import mlmd_exercise

    compileall.compile_dir(str(Path(mlmd_exercise.__file__).parent), quiet=1)

    rec = {k: child("record", k, runs, 10) for k in ("orm", "mlmd-six-calls", "mlmd-one-call", "sqlite-floor")}
    ours = both("record", "ours", runs, 10)
    syncs = {k: syncs_per_run(k) for k in ("orm", "mlmd-six-calls", "mlmd-one-call")}
    our_syncs = {b: syncs_per_run("ours", b) for b in BACKENDS}
    if our_syncs["native"] is not None:
        for k in ("orm", "mlmd-six-calls", "mlmd-one-call"):
            rows.append((f"disk syncs per run: {k}", f"{syncs[k]:.1f}", f"{our_syncs['mlmd']:.1f}",
                         f"{our_syncs['native']:.1f}", f"{syncs[k] / our_syncs['native']:.1f}x fewer", "", ""))
    native_ms, floor_ms = ours["native"]["median"], rec["sqlite-floor"]["median"]
    for k, target, met in (
            ("orm", ">= 10x faster", rec["orm"]["median"] >= 10 * native_ms),
            ("mlmd-six-calls", "", None), ("mlmd-one-call", "", None)):
        rows.append((f"record one run: {k}", fmt(rec[k]), fmt(ours["mlmd"]), fmt(ours["native"]),
                     f"{rec[k]['median'] / native_ms:.1f}x faster", target, "" if met is None else yes(met)))
    rows.append(("record one run: sqlite-floor (one plain sqlite3 WAL transaction)", fmt(rec["sqlite-floor"]),
                 fmt(ours["mlmd"]), fmt(ours["native"]), f"{native_ms / floor_ms:.1f}x the floor",
                 "<= 3x the floor", yes(native_ms <= 3 * floor_ms)))
    same = child("floor", runs, 10)
    ratio = same["ratio"]
    rows.append((f"record one run: the same rows the native backend writes ({same['statements']:.0f} statements, "
                 f"{same['commits']:.0f} commits), bare sqlite3, in the same process; native CPU ms per run "
                 f"{same['cpu']['median']:.2f}", fmt(same["floor"]), "", fmt(same["ours"]),
                 f"{ratio:.2f}x the same-rows floor", "<= 2x", yes(ratio <= 2)))

    rows += all_server_rows(quick)

    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        rows += history_rows(quick, tmp)

    bulk_runs = 5000 if quick else 20000
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        raw_bulk = child("bulk", "raw", f"{tmp}/raw.db", bulk_runs)
        our_bulk = {b: child("bulk", "ours", f"{tmp}/ours-{b}.db", bulk_runs, backend=b) for b in BACKENDS}
    speed = {b: our_bulk[b]["runs_per_second"] for b in BACKENDS}
    rows.append((f"bulk record {bulk_runs:,} runs", f"{raw_bulk['runs_per_second']:,.0f} runs/s",
                 f"{speed['mlmd']:,.0f} runs/s", f"{speed['native']:,.0f} runs/s",
                 f"{speed['native'] / raw_bulk['runs_per_second']:.1f}x raw", ">= 5x raw",
                 yes(speed["native"] >= 5 * raw_bulk["runs_per_second"])))
    floors = [child("bulk-floor", bulk_runs) for _ in range(3)]
    floor = sorted(floors, key=lambda f: f["ratio"])[1]  # the median round of three
    rows.append((f"bulk record {bulk_runs:,} runs against the same rows ({floor['statements']} statements, "
                 f"{floor['commits']} commits: what record_runs wrote, sent again with bare sqlite3)",
                 f"{floor['floor_runs_per_second']:,.0f} runs/s", "", f"{floor['runs_per_second']:,.0f} runs/s",
                 f"{floor['ratio']:.2f}x the same-rows floor", ">= 0.75x", yes(floor["ratio"] >= 0.75)))

    import importlib.util

    if all(importlib.util.find_spec(m) for m in ("mlflow", "sqlalchemy", "alembic")):  # the bench extra has them
        from mlflow_import import mlflow_rows

        rows += mlflow_rows(quick, cache)

    stores = {}
    for size in sizes:
        path, built = build_store(cache, size)
        stores[size] = path
        if built is not None:
            rows.append((f"build the {size:,}-run store (bulk, default backend)", "",
                         f"{built['runs_per_second']:,.0f} runs/s", "", "", "", ""))

    # Recording one run as the store grows: a copy of each size's store, the same runs into
    # each; the ratio is against the smallest store's figure from this same run.
    grown = {size: both("grown", stores[size], runs, 10) for size in sizes}
    for size in sizes:
        ratio = grown[size]["native"]["median"] / grown[sizes[0]]["native"]["median"]
        rows.append((f"record one run into a {size:,}-run store", fmt(grown[sizes[0]]["native"]),
                     fmt(grown[size]["mlmd"]), fmt(grown[size]["native"]),
                     f"{ratio:.2f}x the {sizes[0]:,}-run store's", f"<= 1.2x the {sizes[0]:,}-run store's",
                     yes(ratio <= 1.2)))

    rows += curve_rows(cache, sizes)

    first_lineage = {}
    for size in sizes:
        raw = child("lineage", "raw", stores[size], reps)
        ours = both("lineage", "ours", stores[size], reps)
        for b in BACKENDS:
            if raw["nodes"] != ours[b]["nodes"]:
                raise SystemExit(f"lineage at {size}: MLMD found {raw['nodes']}, the {b} backend {ours[b]['nodes']}")
            first_lineage.setdefault(b, ours[b]["median"])
        native = ours["native"]["median"]
        flat = native <= 1.5 * first_lineage["native"]
        rows.append((f"lineage 20 hops up, {size:,} runs", fmt(raw), fmt(ours["mlmd"]), fmt(ours["native"]),
                     f"{ours['mlmd']['median'] / native:.1f}x the mlmd backend", "<= mlmd backend, <= 3 ms, flat",
                     yes(native <= ours["mlmd"]["median"] and native <= 3 and flat)))

    for size in sizes:
        count_reps = 3 if size >= 50000 else 5
        raw = child("counts", "raw", stores[size], count_reps)
        ours = both("counts", "ours", stores[size], count_reps)
        for b in BACKENDS:
            if raw["counts"] != ours[b]["counts"]:
                raise SystemExit(f"counts at {size}: MLMD says {raw['counts']}, the {b} backend {ours[b]['counts']}")
        native = ours["native"]["median"]
        rows.append((f"count executions by state, {size:,} (store open)", fmt(raw), fmt(ours["mlmd"]),
                     fmt(ours["native"]), f"{ours['mlmd']['median'] / native:.1f}x the mlmd backend",
                     "<= mlmd backend, <= 100 ms", yes(native <= ours["mlmd"]["median"] and native <= 100)))

    biggest = stores[sizes[-1]]
    running, built = build_store(cache, sizes[-1], running=True)
    if built is not None:
        rows.append((f"build the {sizes[-1]:,}-run store, 5% RUNNING (bulk)", "",
                     f"{built['runs_per_second']:,.0f} runs/s", "", "", "", ""))
    found = both("states", running, 5 if quick else 10)
    expected = sizes[-1] // RUNNING_EVERY
    for b in BACKENDS:
        if found[b]["interrupted"] != expected or found[b]["counts"].get("RUNNING") != expected:
            raise SystemExit(f"states on the RUNNING store ({b}): {found[b]}, expected {expected:,} interrupted")
    rows.append((f"states: counts + interrupted, {sizes[-1]:,} runs, 5% RUNNING (library, by address: SQL)", "",
                 fmt(found["mlmd"]), fmt(found["native"]), "", "<= 100 ms", yes(found["native"]["median"] <= 100)))
    command = {b: wall([CLI, "states", "--db", str(running)], reps=3 if quick else 5, env=backend_env(b))
               for b in BACKENDS}
    rows.append((f"states: counts + interrupted, {sizes[-1]:,} runs, 5% RUNNING (command)", "",
                 fmt(command["mlmd"], "s"), fmt(command["native"], "s"), "", "", ""))
    for name, target_s in (("check", 2), ("verify", None)):
        peak = both("peak", name, biggest)
        rows.append((f"{name}, {sizes[-1]:,} runs: time, peak memory", "",
                     *(f"{peak[b]['seconds']:.2f} s, {peak[b]['peak_mb']:,.0f} MB" for b in BACKENDS), "",
                     "<= 200 MB" + (f", <= {target_s} s" if target_s else ""),
                     yes(peak["native"]["peak_mb"] <= 200
                         and (target_s is None or peak["native"]["seconds"] <= target_s))))
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        ours_s = copies(lambda dest: [CLI, "backup", dest, "--db", biggest], tmp, reps=3)
        # The same steps in the sqlite3 shell: the online backup, then SQLite's check of the copy.
        plain_s = copies(lambda dest: ["sqlite3", biggest, f".backup '{dest}'", f".open '{dest}'",
                                       "PRAGMA quick_check;"], tmp, reps=3)
    rows.append((f"backup, {sizes[-1]:,} runs (reference: sqlite3 .backup, then quick_check)", fmt(plain_s, "s"),
                 fmt(ours_s, "s"), fmt(ours_s, "s"), f"{ours_s['median'] / plain_s['median']:.1f}x the reference",
                 "<= 2x the reference", yes(ours_s["median"] <= 2 * plain_s["median"])))
    depth = 20000 if quick else 200000
    deep, built = build_store(cache, depth, deep=True)
    if built is not None:
        rows.append((f"build the {depth:,}-deep chain store (bulk)", "",
                     f"{built['runs_per_second']:,.0f} runs/s", "", "", "", ""))
    start_id = child("newest", deep)["id"]
    walked = both("peak", "lineage", deep, "--artifact", start_id, "--direction", "upstream")
    expected = f"{depth + 1:,} artifacts, {depth:,} executions"
    for b in BACKENDS:
        if walked[b]["code"] or not walked[b]["last"].endswith(expected):
            raise SystemExit(f"lineage of the deep chain ({b}) ended with '{walked[b]['last']}', "
                             f"not '... {expected}'")
    native = walked["native"]
    # The reference: the same closure in one recursive query of the sqlite3 shell, its rows printed.
    raw = wall(["sqlite3", str(deep), RAW_UPSTREAM.format(start=int(start_id))], reps=3)
    rows.append((f"lineage up, no hop limit, {depth:,}-deep chain: first line, all, peak memory "
                 "(reference: one WITH RECURSIVE query, sqlite3)", fmt(raw, "s"),
                 *(f"{walked[b]['first_line_s']:.2f} s, {walked[b]['seconds']:.1f} s, {walked[b]['peak_mb']:,.0f} MB"
                   for b in BACKENDS),
                 f"{native['seconds'] / raw['median']:.1f}x the reference, "
                 f"{walked['mlmd']['seconds'] / native['seconds']:.1f}x faster than the mlmd backend",
                 "first line <= 0.3 s, all <= 3x the reference, <= 200 MB",
                 yes(native["first_line_s"] <= 0.3 and native["seconds"] <= 3 * raw["median"]
                     and native["peak_mb"] <= 200)))
    pages = both("web", biggest, 5 if quick else 20)
    for name, what, target in (("runs", "runs page (newest 50, params and metrics)", 300),
                               ("runs-filtered", "runs page, filtered by state, type, context; page 3", 300),
                               ("node", "a node's page", None), ("lineage", "its lineage, 3 hops, SVG", None),
                               ("node+lineage", "a node's page and its 3-hop lineage", 500),
                               ("states", "states page (chart)", None)):
        met = "" if target is None else yes(pages["native"][name]["median"] <= target)
        rows.append((f"ui, {sizes[-1]:,} runs: {what}", "", fmt(pages["mlmd"][name]), fmt(pages["native"][name]),
                     "", f"<= {target} ms" if target else "", met))
    rows += load_rows(biggest, sizes[-1])
    serving = {b: ui_serving(biggest, 3 if quick else 5, b) for b in BACKENDS}
    rows.append((f"ui: started to serving its runs page, {sizes[-1]:,} runs", "", fmt(serving["mlmd"], "s"),
                 fmt(serving["native"], "s"), "", "<= 1 s", yes(serving["native"]["median"] <= 1)))

    store10k = str(stores[10000])
    cold_reps = 3 if quick else 7
    bare = wall([PYTHON, "-c", "import ml_metadata.metadata_store.metadata_store"], reps=cold_reps)
    for name, command in (("lineage", [CLI, "lineage", "--artifact", "1", "--hops", "4", "--db", store10k]),
                          ("states", [CLI, "states", "--db", store10k]),
                          ("ls", [CLI, "ls", "executions", "--limit", "10", "--db", store10k]),
                          ("show", [CLI, "show", "execution", "1", "--db", store10k])):
        ours = {b: wall(command, reps=cold_reps, env=backend_env(b)) for b in BACKENDS}
        native = ours["native"]["median"]
        ratio = native / bare["median"]
        rows.append((f"cold start: {name} (vs bare MLMD import)", fmt(bare, "s"), fmt(ours["mlmd"], "s"),
                     fmt(ours["native"], "s"), f"{ratio:.2f}x of the import", "<= 0.15 s or <= 0.5x the import",
                     yes(native <= 0.15 or ratio <= 0.5)))

    demo_reps = 2 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "exercise.py"
        from reference import EXERCISE_SCRIPT  # noqa: E402 (bench/ is on the path)

        script.write_text(EXERCISE_SCRIPT)
        env = {**os.environ, "BENCH_DIR": str(HERE)}
        times = {"exercise": [], **{b: [] for b in BACKENDS}}
        for i in range(demo_reps + 1):
            for kind, command, extra in (("exercise", [PYTHON, str(script)], {}),
                                         *((b, [CLI, "run"], {"MLMD_BACKEND": b}) for b in BACKENDS)):
                work = Path(tmp) / f"{kind}-{i}"
                work.mkdir()
                start = time.perf_counter()
                subprocess.run(command, cwd=work, check=True, capture_output=True, env={**env, **extra})
                if i:
                    times[kind].append(time.perf_counter() - start)
        ex, demo = summary(times["exercise"]), {b: summary(times[b]) for b in BACKENDS}
        rows.append(("demo job end to end", fmt(ex, "s"), fmt(demo["mlmd"], "s"), fmt(demo["native"], "s"),
                     f"{ex['median'] / demo['native']['median']:.2f}x faster", "faster than the exercise",
                     yes(demo["native"]["median"] < ex["median"])))

    headers = ("what", "reference", "mlmd backend", "native backend", "ratio (native)", "target (native)", "met")
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    print()
    for row in [headers, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    print(f"\n{time.time() - began:.0f} s in all; medians with [min-max]; each backend chosen by $MLMD_BACKEND "
          "in its own processes; the ratio, target and met are the native backend's")
    return 0 if all(r[6] != "NO" for r in rows) else 1

def prune_rows(cache: Path, size: int) -> int:
    """Pruning the older half of the `size`-run store (a copy) and exporting 10,000 runs."""
    path, _ = build_store(cache, size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:  # copies, never beside a cache another checkout shares
        exports = {b: child("export", path, tmp, min(10000, size // 2), b) for b in ("mlmd", "native")}
        pruned = child("prune", path, tmp)
    mb = 1024 * 1024
    for backend, exported in exports.items():
        rows.append((f"export the newest {exported['runs']:,} runs of {size:,} ({backend} backend)", "",
                     f"{exported['seconds']:.1f} s, {exported['bytes'] / mb:.1f} MB "
                     f"({exported['artifacts']:,} artifacts, {exported['events']:,} events)", "", "", ""))
    rows.append((f"plan: prune the older half of {size:,} runs", "",
                 f"{pruned['plan_s']:.1f} s: {pruned['pruned_runs']:,} runs, {pruned['pruned_artifacts']:,} "
                 f"artifacts go, {pruned['kept_old_runs']:,} old runs kept", "", "", ""))
    rows.append(("prune --yes --archive (write, read back, delete: one transaction)", "",
                 f"{pruned['prune_with_archive_s']:.1f} s, archive {pruned['archive_bytes'] / mb:.1f} MB", "", "", ""))
    rows.append(("store size: before, after prune, after VACUUM (its time)", "",
                 f"{pruned['bytes_before'] / mb:.1f} MB, {pruned['bytes_after'] / mb:.1f} MB, "
                 f"{pruned['bytes_after_vacuum'] / mb:.1f} MB ({pruned['vacuum_s']:.1f} s)", "", "", ""))
    rows.append(("import the archive into an empty store", "",
                 f"{pruned['import_archive_s']:.1f} s, {pruned['imported_runs']:,} runs", "", "", ""))
    rows.append(("check after the prune: problems", "", str(pruned["check_problems"]), "", "0",
                 "yes" if pruned["check_problems"] == 0 else "NO"))
    print(json.dumps(pruned))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    return 0 if pruned["check_problems"] == 0 else 1


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
