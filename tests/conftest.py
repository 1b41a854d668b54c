"""Shared fixtures: real MLMD stores in tmp_path, and ways to run the CLI."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import subprocess
import sys
import uuid
import warnings
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional

import pytest

import mlmd_exercise as mx
from mlmd_exercise.cli import main as cli
from mlmd_exercise import workflow
from mlmd_exercise.store import choice


# Set by scripts/with-servers (make test, .ci/run): throwaway servers' base URLs.
PG_BASE = os.environ.get("MLMD_TEST_POSTGRES", "")
MYSQL_BASE = os.environ.get("MLMD_TEST_MYSQL", "")
BACKENDS = ["sqlite", "postgresql", "mysql"]
# Where ml-metadata is installed, every store test runs with both backends on each database:
# "sqlite" and "mysql" with the default there (ml-metadata), "postgresql-mlmd" with ml-metadata
# asked for (PostgreSQL stores open with the native backend by default), and "sqlite-native",
# "postgresql-native", "mysql-native" ($MLMD_BACKEND names the backend while the test runs, so
# that the CLI in a subprocess opens the store with it as well). Where ml-metadata is not the
# default (Python 3.12 and later, or the whole suite run with $MLMD_BACKEND=native), the plain
# names already mean native.
NATIVE_TOO = choice.choose().name == "mlmd"
STORES = (["sqlite", "postgresql-mlmd", "mysql"] + [f"{b}-native" for b in BACKENDS]) if NATIVE_TOO else BACKENDS
# The stores the store matrix (the `db` fixture, `store_matrix`) runs on: all of them, or those
# of the databases $MLMD_TEST_MATRIX lists ("sqlite"). .ci/run's second pass, Python 3.13 with
# the native backend alone, runs the matrix on SQLite: the first pass ran the native backend on
# the servers already; the tests written for one server still run there.
_MATRIX_DBS = (os.environ.get("MLMD_TEST_MATRIX") or ",".join(BACKENDS)).split(",")
if set(_MATRIX_DBS) - set(BACKENDS):
    raise pytest.UsageError(f"MLMD_TEST_MATRIX={os.environ['MLMD_TEST_MATRIX']!r}: "
                            f"list some of {','.join(BACKENDS)}")
MATRIX = [s for s in STORES if s.split("-")[0] in _MATRIX_DBS]
# backend -> (base URL, the variable that names it, the variable that makes a skip a failure)
SERVERS = {"postgresql": (PG_BASE, "MLMD_TEST_POSTGRES", "MLMD_REQUIRE_POSTGRES"),
           "mysql": (MYSQL_BASE, "MLMD_TEST_MYSQL", "MLMD_REQUIRE_MYSQL")}


def pytest_collection_finish(session) -> None:
    """What the imports and the collection made is moved out of the collector's sight
    (gc.freeze): tests call gc.collect() to have a dropped store closed at once, and with the
    suite's imports in the heap each call took 74-82 ms, against 8 ms with them frozen (the
    value tables' module: 47 s against 28 s). Hypothesis is imported first where it is
    installed: its plugins register their random generators, and its check that something
    refers to them cannot see frozen referrers."""
    with contextlib.suppress(ImportError):
        import hypothesis  # noqa: F401
    gc.collect()
    gc.freeze()


def server_base(backend: str) -> str:
    """The test server's base URL for a backend; skips the test if there is none (fails in CI)."""
    base, name, required = SERVERS[backend]
    if not base:
        if os.environ.get(required):  # set by .ci/run: a skip there would hide a gap
            pytest.fail(f"{required} is set but {name} is not")
        pytest.skip(f"{name} is not set: no {backend} server to test against")
    return base


def server_ca(backend: str) -> str:
    """The CA file of the test server's certificate (scripts/with-postgres and with-mysql make one
    with openssl); skips the test where there is none (fails in CI)."""
    name = SERVERS[backend][1] + "_CA"
    found = os.environ.get(name)
    if not found:
        if os.environ.get(SERVERS[backend][2]):
            pytest.fail(f"{SERVERS[backend][2]} is set but {name} is not (is openssl missing?)")
        pytest.skip(f"{name} is not set: the test server has no certificate")
    return found


def new_location(backend: str, tmp_path: Path) -> str:
    """A fresh store address: a file in tmp_path, or a new database on the test server
    (`backend` is a database, or one of STORES: the backend part, "-native" or "-mlmd", does not
    change it)."""
    backend = backend.split("-")[0]
    if backend == "sqlite":
        return str(tmp_path / f"s{uuid.uuid4().hex[:8]}.db")
    location = server_base(backend).rstrip("/") + "/t_" + uuid.uuid4().hex[:16]
    _SERVER_STORES.append(location)
    return location


# Server databases new_location handed out, each dropped when its test module ends
# (_drop_server_stores), with those named after it (a test's second store, "...m1a2b"): a
# PostgreSQL database takes 7-8 MB on disk, and one run of the suite makes about 3,000 of them,
# which filled the disk of a shared machine.
_SERVER_STORES: List[str] = []


def tracked(location: str) -> str:
    """A server store address a test made itself, dropped with its module as new_location's are."""
    _SERVER_STORES.append(location)
    return location


@pytest.fixture(scope="module", autouse=True)
def _drop_server_stores() -> Iterator[None]:
    start = len(_SERVER_STORES)
    yield
    made, _SERVER_STORES[start:] = _SERVER_STORES[start:], []
    drop_server_stores(made)


def drop_server_stores(locations: List[str]) -> None:
    """Drops the databases of these server store addresses, and those whose names begin with
    theirs, where they exist. Connections still open on them are ended (PostgreSQL's FORCE;
    MariaDB's lock wait is cut short). A database that cannot be dropped is a warning, not a
    failure of the test that made it: it only takes disk until the server is removed."""
    from mlmd_exercise.store import mysql, postgres
    from mlmd_exercise.store.address import parse_location

    by_server: dict = {}
    for location in locations:
        loc = parse_location(location)
        by_server.setdefault((loc.scheme, loc.host, loc.port), (loc, []))[1].append(loc.dbname)
    for (scheme, _, _), (loc, prefixes) in by_server.items():
        try:
            if scheme == "mysql":
                admin = mysql.Admin(loc, None)
                admin.execute("SET SESSION lock_wait_timeout = 10")
                names = [r[0] for r in admin.execute("SELECT schema_name FROM information_schema.schemata")]
                drop = "DROP DATABASE IF EXISTS {}"
                run = admin.execute
            else:
                admin = postgres.Admin(loc, "postgres")
                names = [r[0] for r in admin.run("SELECT datname FROM pg_database")]
                drop = "DROP DATABASE IF EXISTS {} WITH (FORCE)"
                run = admin.run
        except Exception as e:
            warnings.warn(f"cannot drop the test databases on {loc}: {e}")
            continue
        try:
            for name in names:
                if name.startswith(tuple(prefixes)):
                    try:
                        if scheme == "mysql":  # as FORCE does on PostgreSQL: a connection left open
                            _end_mysql_sessions(admin, name)  # held the drop for lock_wait_timeout
                        run(drop.format(mysql.quote(name) if scheme == "mysql" else f'"{name}"'))
                    except Exception as e:
                        warnings.warn(f"cannot drop test database {name} on {loc}: {e}")
        finally:
            admin.close()


def _end_mysql_sessions(admin, database: str) -> None:
    """Ends the sessions other than this one whose database is `database`: one still open
    there (a store a test left to the garbage collector) holds a metadata lock that kept
    DROP DATABASE waiting for its lock_wait_timeout, up to 30 s a module."""
    for (session,) in admin.execute("SELECT id FROM information_schema.processlist "
                                    "WHERE db = %s AND id <> CONNECTION_ID()", (database,)):
        try:
            admin.execute(f"KILL CONNECTION {int(session)}")
        except Exception:  # it ended meanwhile
            pass


def has_mlmd(python: str) -> bool:
    """Whether this Python (an interpreter's path) can use ml-metadata."""
    if python == sys.executable:
        return choice.mlmd_missing() is None
    code = "from mlmd_exercise.store import choice; import sys; sys.exit(choice.mlmd_missing() is not None)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def other_python() -> Optional[str]:
    """The interpreter of `make test`'s second virtualenv, of the other kind than this one
    (with ml-metadata where this has none, or the reverse), if there is one."""
    other = os.environ.get("MLMD_TEST_OTHER_PYTHON", "")
    return other if other and Path(other).is_file() else None


def mlmd_python() -> str:
    """A Python with ml-metadata: this one, else the other virtualenv's; else the test is
    skipped (a failure where $MLMD_REQUIRE_CROSSREAD is set, as in .ci/run)."""
    for python in (sys.executable, other_python()):
        if python and has_mlmd(python):
            return python
    why = "no Python with ml-metadata here ($MLMD_TEST_OTHER_PYTHON names none)"
    if os.environ.get("MLMD_REQUIRE_CROSSREAD"):
        pytest.fail(why)
    pytest.skip(why)


def server_admin(db: str, database: Optional[str] = None):
    """A plain SQL connection (postgres.Admin or mysql.Admin: run(sql, **params), close())
    to a server store's database, or to `database` on its server."""
    from mlmd_exercise.store import mysql, postgres
    from mlmd_exercise.store.address import parse_location

    loc = parse_location(db)
    module = mysql if loc.scheme == "mysql" else postgres
    return module.Admin(loc, loc.dbname if database is None else database)


@contextmanager
def backend_of(store: str) -> Iterator[None]:
    """Within it, stores open with the backend that `store` (one of STORES) names."""
    with pytest.MonkeyPatch.context() as patch:
        if store.endswith(("-native", "-mlmd")):
            patch.setenv(choice.ENV_BACKEND, store.rsplit("-", 1)[1])
        elif NATIVE_TOO:  # the default, even inside another fixture's "-native"
            patch.delenv(choice.ENV_BACKEND, raising=False)
        yield


@pytest.fixture(params=MATRIX)
def db(request, tmp_path: Path) -> Iterator[str]:
    """The address of a new store, once per database and backend (see STORES and MATRIX)."""
    with backend_of(request.param):
        yield new_location(request.param, tmp_path)


def store_matrix(fill: Callable[[str, Path], Any]):
    """A module-scoped fixture: a store on every database and backend (STORES), made once per
    module, its value what `fill(address, workdir)` returns (the store filled, its address...).
    `fill` runs, and the tests using the value run, with the backend the store is named for."""
    @pytest.fixture(scope="module", params=MATRIX)
    def fixture(request, tmp_path_factory):
        with backend_of(request.param):
            workdir = tmp_path_factory.mktemp(fill.__name__.strip("_"))
            yield fill(new_location(request.param, workdir), workdir)
    fixture.__doc__ = fill.__doc__
    return fixture


def check(result, message: str, before: Any = None, now: Optional[Callable[[], Any]] = None) -> None:
    """A refusal as users must see it: exit 2, one line on stderr with `message` in it; and,
    given `before` and `now`, the store as it was (`now()` still equals `before`)."""
    assert result.code == 2, (result.out, result.err)
    assert len(result.err.splitlines()) == 1, result.err
    assert message in result.err, result.err
    if now is not None:
        assert now() == before


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """An SQLite store file, for tests about files."""
    return tmp_path / "metadata.db"


@pytest.fixture
def store(db: str) -> mx.Store:
    """A fresh, empty, writable store on each backend."""
    return mx.open_store(db, create=True)


@pytest.fixture
def tracker(store) -> mx.Tracker:
    return mx.Tracker(store)


def write(path: Path, text: str) -> Path:
    """Writes a small file (making its folder) and returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A working directory in which the demo job has run once (read-only for tests)."""
    workdir = tmp_path_factory.mktemp("demo")
    workflow.run_demo(mx.open_store(workdir / "metadata.db", create=True), workdir)
    return workdir


def digest(path: Path) -> str:
    """The bytes of a file, hashed: to show that a command left a store as it was."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys):
    """Runs `mlmd-exercise ARGS` in this process and returns its exit code and output."""

    def run(*args: str) -> CliResult:
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as e:  # argparse: --help, usage errors
            code = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_module(args: List[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    """Runs `python -m mlmd_exercise ARGS` in a separate process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "mlmd_exercise", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=120, **kw,
    )


def deep_chain(store, runs: int, shared: bool = False, uri_length: int = 0) -> None:
    """Records a chain of `runs` Trainer runs into `store`, each warm-started from the
    previous run's model (run i reads model i-1 and writes model i; the first reads a
    dataset): a walk from its newest model upstream is 2 * runs hops. `shared`: every run
    also reads the first dataset (edges back to a node reached long before, and a hop as
    wide as the chain downstream from it); models of equal i % 7 have the same content.
    `uri_length`: pad the models' URIs to about this length (long lines of output)."""
    from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

    data = ArtifactSpec("file:///deep/data.csv", properties={"split": "train"})
    previous = data
    pad = "x" * max(0, uri_length - 30)

    def chain():
        nonlocal previous
        for i in range(runs):
            same = "sha256:" + hashlib.sha256(str(i % 7).encode()).hexdigest() if shared else ""
            model = ArtifactSpec(f"file:///deep/{pad}m{i}.joblib", type="SavedModel", fingerprint=same)
            inputs = {"model" if i else "examples": previous}
            if shared and i:
                inputs["examples"] = data
            yield RunSpec(inputs=inputs, outputs={"model": model}, params={"i": i})
            previous = model

    record_runs(mx.Tracker(store, experiment="deep"), chain())
