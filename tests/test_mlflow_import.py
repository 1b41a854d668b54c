"""`import --from-mlflow URI`: stores that real MLflow made (tests/mlflow_stores.py, in a
process of its own), imported by the real CLI, read back through the CLI.

The SQLite database store holds the story (a trained and registered model, its fine-tune,
a parent with nested runs, a FAILED and a KILLED run, a deleted run) and a sweep of 100
runs; the mlruns/ file store (MLflow 3.13+ writes one only with MLFLOW_ALLOW_FILE_STORE)
holds the story. Each is made once per module.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import importlib.util
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_module
from mlmd_exercise.cli import main as cli

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mlflow", "sqlalchemy", "alembic")),
    reason="MLflow is not installed here (the test-mlflow extra: pip install -e '.[test-mlflow]')")

BUILDER = Path(__file__).with_name("mlflow_stores.py")
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ALLOW_FILE_STORE": "true"}
SWEEP = 100
STORY_RUNS = 7  # the story's runs that are not deleted


def build(uri: str, folder: Path, what: str) -> dict:
    done = subprocess.run([sys.executable, str(BUILDER), uri, str(folder), what], capture_output=True,
                          text=True, timeout=600, cwd=folder, env={**_env(), **ENV})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env() -> dict:
    import os

    return dict(os.environ)


def tree_digest(folder: Path) -> str:
    """Every file under a folder, by path and bytes: to show that an import wrote nothing there."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def mlmd(*args, cwd: Path) -> subprocess.CompletedProcess:
    return run_module(list(args), cwd, env={**_env(), "MLFLOW_DISABLE_TELEMETRY": "true"})


def ok_json(db: Path, *args):
    """A query through the CLI in this process (the imports run in their own)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in (*args, "--db", db, "--json")])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def sides(db: Path, execution_id: int):
    """(role, artifact) of one run's inputs, and of its outputs."""
    walk = ok_json(db, "lineage", "--execution", execution_id, "--hops", 1)
    artifacts = {a["id"]: a for a in walk["artifacts"]}
    return tuple([(e["role"], artifacts[e["artifact_id"]]) for e in walk["events"]
                  if e["execution_id"] == execution_id and e["kind"] == kind] for kind in ("INPUT", "OUTPUT"))


class Imported:
    """An MLflow store made by MLflow, imported twice: what each import said, the store's
    digest before and after, and what the MLMD store holds."""

    def __init__(self, folder: Path, uri: str, made: dict, db: Path, first: dict, second: dict, before: str,
                 after: str):
        self.folder, self.uri, self.made, self.db = folder, uri, made, db
        self.first, self.second = (subprocess.CompletedProcess([], d["code"], d["out"], d["err"])
                                   for d in (first, second))
        self.before, self.after = before, after
        self.runs = {r["name"]: r for r in ok_json(db, "ls", "executions")}
        self.artifacts = ok_json(db, "ls", "artifacts")

    def run(self, role: str) -> dict:
        return self.runs["mlflow:" + self.made[role]]

    def artifact(self, uri: str) -> dict:
        return next(a for a in self.artifacts if a["uri"] == uri)


def _imported(tmp_path_factory, kind: str, what: str) -> Imported:
    """Made once for all of pytest-xdist's workers (their temporary folders share a parent), under
    a lock, and only read afterwards: MLflow takes seconds to make its database."""
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent / f"mlflow-{kind}"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "imported.json"
        if not done.exists():
            folder = shared / "mlflow"
            folder.mkdir()
            uri = f"sqlite:///{folder}/mlflow.db" if kind == "sqlite" else (folder / "mlruns").as_uri()
            made = build(uri, folder, what)
            (shared / "mlmd").mkdir()
            db = shared / "mlmd" / "metadata.db"
            before = tree_digest(folder)
            first, second = ({"code": r.returncode, "out": r.stdout, "err": r.stderr} for r in (
                mlmd("import", "--from-mlflow", uri, "--db", db, cwd=db.parent) for _ in range(2)))
            done.write_text(json.dumps({"folder": str(folder), "uri": uri, "made": made, "db": str(db),
                                        "first": first, "second": second, "before": before,
                                        "after": tree_digest(folder)}))
    given = json.loads(done.read_text())
    return Imported(Path(given["folder"]), given["uri"], given["made"], Path(given["db"]), given["first"],
                    given["second"], given["before"], given["after"])


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory) -> Imported:
    return _imported(tmp_path_factory, "sqlite", f"story,sweep:{SWEEP}")


@pytest.fixture(scope="module")
def file_store(tmp_path_factory) -> Imported:
    return _imported(tmp_path_factory, "file", "story")


def test_every_run_is_an_execution_with_its_state_times_params_and_tags(sqlite_store):
    s = sqlite_store
    assert s.first.returncode == 0, s.first.stderr
    lines = s.first.stdout.splitlines()
    assert lines[0].startswith(f"imported {STORY_RUNS + SWEEP} runs from {s.uri} into {s.db} in ")
    assert "left out: 1 run deleted in MLflow" in lines
    assert len(s.runs) == STORY_RUNS + SWEEP
    con = sqlite3.connect(f"file:{s.folder / 'mlflow.db'}?mode=ro", uri=True)
    mlflow_runs = {r[0]: r[1:] for r in con.execute(
        "SELECT run_uuid, name, status, start_time, end_time, lifecycle_stage FROM runs")}
    con.close()
    states = {"FINISHED": "COMPLETE", "FAILED": "FAILED", "KILLED": "CANCELED"}
    for run_id, (name, status, start, end, stage) in mlflow_runs.items():
        if stage == "deleted":
            assert "mlflow:" + run_id not in s.runs
            continue
        run = s.runs["mlflow:" + run_id]
        assert run["properties"]["run.name"] == name
        assert run["state"] == states[status]
        assert (run["properties"]["started_ms"], run["properties"]["ended_ms"]) == (start, end)
        assert run["properties"]["mlmd_exercise_origin"] == "mlflow:" + run_id
    assert s.run("FAILED")["state"] == "FAILED" and s.run("KILLED")["state"] == "CANCELED"
    train = s.run("train")["properties"]
    assert (train["C"], train["solver"], train["tag.team"], train["env.git_commit"]) == (1.0, "lbfgs", "vision",
                                                                                         "0123abcd")
    assert train["db_password"] == "***"  # masked as every param the package records
    assert train["env.user"] and train["mlflow.artifact_uri"].startswith("file://")
    assert not any(k.startswith("tag.mlflow.") for k in train)  # MLflow's own tags mapped, not copied
    for child in s.made["children"]:
        assert s.runs["mlflow:" + child]["properties"]["mlflow.parent_run"] == "mlflow:" + s.made["parent"]
    experiments = {e["name"]: e["executions"] for e in ok_json(s.db, "ls", "experiments")}
    assert experiments == {"training": STORY_RUNS, "sweep": SWEEP}


def test_metrics_keep_their_whole_step_history_and_their_last_value(sqlite_store):
    s = sqlite_store
    train = s.run("train")
    history = ok_json(s.db, "metrics", train["id"])["metrics"]
    assert [(p["step"], p["value"]) for p in history["loss"]] == [(i, 1.0 / (i + 1)) for i in range(5)]
    assert [p["value"] for p in history["accuracy"]] == [0.9]
    assert train["properties"]["loss"] == 0.2 and train["properties"]["accuracy"] == 0.9
    swept = s.runs["mlflow:" + s.made["runs"][7]]
    assert [p["step"] for p in ok_json(s.db, "metrics", swept["id"])["metrics"]["loss"]] == list(range(10))
    assert swept["properties"]["C"] == 0.08  # a param that reads as a number is one


def test_datasets_are_inputs_and_models_are_outputs_with_names_versions_aliases(sqlite_store):
    s = sqlite_store
    data_uri = (s.folder / "train.csv").as_uri()
    data = s.artifact(data_uri)
    assert [a["uri"] for a in s.artifacts if a["type"] == "DataSet"] == [data_uri]  # one, for every run
    assert data["properties"]["name"] == "train" and data["properties"]["fingerprint"].startswith("sha256:")
    assert '"name": "x"' in data["properties"]["schema"] and data["properties"]["digest"]
    inputs, outputs = sides(s.db, s.run("train")["id"])
    assert [(role, a["uri"]) for role, a in inputs] == [("training", data_uri)]
    outputs = dict(outputs)
    assert outputs["registered"]["uri"] == "models:/clf/1"
    registered = outputs["registered"]["properties"]
    assert (registered["name"], registered["mlflow.version"], registered["mlflow.aliases"]) == ("clf", 1, "champion")
    logged = outputs["model"]
    assert logged["properties"]["mlflow.model_id"] == s.made["model"] == registered["mlflow.model_id"]
    assert logged["properties"]["fingerprint"] == registered["fingerprint"]  # the same files
    assert Path(logged["uri"].removeprefix("file://")).is_dir()
    v2 = s.artifact("models:/clf/2")["properties"]
    assert (v2["mlflow.version"], v2["mlflow.aliases"], v2["mlflow.model_id"]) == (2, "", s.made["tuned"])
    assert len([a for a in s.artifacts if a["uri"].startswith("models:/swept/")]) == SWEEP


def test_lineage_upstream_of_a_registered_model_reaches_its_dataset(sqlite_store):
    """clf v2 was made by a fine-tune of clf v1's model: upstream of it are both runs and the data."""
    s = sqlite_store
    v2 = s.artifact("models:/clf/2")
    done = mlmd("lineage", "--artifact", v2["id"], "--direction", "upstream", "--db", s.db, cwd=s.db.parent)
    assert done.returncode == 0, done.stderr
    assert (s.folder / "train.csv").as_uri() in done.stdout
    assert "--base_model-->" in done.stdout and "--training-->" in done.stdout
    walk = ok_json(s.db, "lineage", "--artifact", v2["id"], "--direction", "upstream")
    assert {x["name"] for x in walk["executions"]} == {"mlflow:" + s.made["train"], "mlflow:" + s.made["finetune"]}
    swept = s.artifact("models:/swept/100")
    walk = ok_json(s.db, "lineage", "--artifact", swept["id"], "--direction", "upstream")
    assert [a["uri"] for a in walk["artifacts"] if a["type"] == "DataSet"] == [(s.folder / "train.csv").as_uri()]


def test_a_second_import_adds_nothing_says_so_and_the_mlflow_store_is_only_read(sqlite_store):
    s = sqlite_store
    assert s.second.returncode == 0, s.second.stderr
    assert s.second.stdout.startswith(f"imported 0 runs from {s.uri}")
    assert f"({STORY_RUNS + SWEEP} were already there)" in s.second.stdout
    assert len(ok_json(s.db, "ls", "artifacts")) == len(s.artifacts)
    assert len(ok_json(s.db, "ls", "executions")) == len(s.runs)
    assert s.after == s.before  # every byte and every name under the MLflow folder as it was


def test_a_later_import_brings_only_the_runs_added_since(sqlite_store, tmp_path):
    """Copies of both stores as the imports left them; then a run more in MLflow."""
    s = sqlite_store
    shutil.copy(s.folder / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    db = tmp_path / "metadata.db"
    shutil.copy(s.db, db)
    artifacts = len(s.artifacts)
    later = build(uri, s.folder, "more")["later"]  # its dataset: the file the others read
    done = mlmd("import", "--from-mlflow", uri, "--db", db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 1 run ") and f"({STORY_RUNS + SWEEP} were already there)" in done.stdout
    # A run's outputs are recorded with it: a version registered from a run recorded already is counted.
    assert "left out: 1 model logged or registered after its run was imported" in done.stdout.splitlines()
    runs = ok_json(db, "ls", "executions")
    assert len(runs) == STORY_RUNS + SWEEP + 1 and runs[0]["name"] == "mlflow:" + later
    assert len(ok_json(db, "ls", "artifacts")) == artifacts  # it read the dataset the store holds
    inputs, _ = sides(db, runs[0]["id"])
    assert [a["uri"] for _, a in inputs] == [(s.folder / "train.csv").as_uri()]  # the same file, content


def test_the_file_store_imports_as_the_database_store_does(file_store):
    s = file_store
    assert s.first.returncode == 0, s.first.stderr
    assert s.first.stdout.startswith(f"imported {STORY_RUNS} runs from {s.uri}")
    assert s.second.stdout.startswith("imported 0 runs") and f"({STORY_RUNS} were already there)" in s.second.stdout
    assert s.after == s.before
    train = s.run("train")
    loss = ok_json(s.db, "metrics", train["id"])["metrics"]["loss"]
    assert [p["step"] for p in loss] == list(range(5))  # once each, though mlruns/ holds step 0 twice
    v2 = s.artifact("models:/clf/2")
    walk = ok_json(s.db, "lineage", "--artifact", v2["id"], "--direction", "upstream")
    assert (s.folder / "train.csv").as_uri() in [a["uri"] for a in walk["artifacts"]]
    assert s.artifact("models:/clf/1")["properties"]["mlflow.aliases"] == "champion"


def refused(tmp_path: Path, uri: str, *why: str) -> None:
    before = tree_digest(tmp_path)
    db = tmp_path / "metadata.db"
    done = mlmd("import", "--from-mlflow", uri, "--db", db, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert f"'{uri}'" in done.stderr and all(w in done.stderr for w in why), done.stderr
    assert not db.exists() and tree_digest(tmp_path) == before


def test_a_database_mlflow_refuses_is_one_line_and_nothing_is_written(sqlite_store, tmp_path):
    """A database an older MLflow made, which this MLflow asks to upgrade first: left as it is."""
    shutil.copy(sqlite_store.folder / "mlflow.db", tmp_path / "old.db")
    con = sqlite3.connect(tmp_path / "old.db")
    con.execute("UPDATE alembic_version SET version_num = 'c48cb773bb87'")
    con.commit()
    con.close()
    refused(tmp_path, f"sqlite:///{tmp_path}/old.db", "MLflow refuses", "Detected out-of-date database schema")


def test_mlflow_never_writes_to_the_store_it_reads(sqlite_store, tmp_path):
    """Without its Default experiment, MLflow's client makes it again when it opens a database:
    the import's connections are read-only, so that is refused, and said in one line."""
    shutil.copy(sqlite_store.folder / "mlflow.db", tmp_path / "nodefault.db")
    con = sqlite3.connect(tmp_path / "nodefault.db")
    con.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
    con.execute("DELETE FROM experiments WHERE experiment_id = 0")
    con.commit()
    con.close()
    refused(tmp_path, f"sqlite:///{tmp_path}/nodefault.db", "MLflow would change",
            "(attempt to write a readonly database): the import only reads")


def test_the_mlflow_database_is_no_store_to_import_into(sqlite_store, tmp_path):
    shutil.copy(sqlite_store.folder / "mlflow.db", tmp_path / "mlflow.db")
    before = tree_digest(tmp_path)
    done = mlmd("import", "--from-mlflow", f"sqlite:///{tmp_path}/mlflow.db", "--db", tmp_path / "mlflow.db",
                cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == (
        f"mlmd-exercise: error: 'sqlite:///{tmp_path}/mlflow.db' is the MLflow store, not an MLMD store: "
        "name the store to import into with --db\n")
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("case", ["missing", "not sqlite", "other tables", "empty folder", "no trash", "http"])
def test_what_is_no_mlflow_store_is_one_line_and_nothing_is_written(tmp_path, case):
    if case == "missing":
        uri, why = f"sqlite:///{tmp_path}/none.db", "no such file"
    elif case == "not sqlite":
        (tmp_path / "notes.db").write_text("hello\n")
        uri, why = f"sqlite:///{tmp_path}/notes.db", "not an SQLite database"
    elif case == "other tables":
        con = sqlite3.connect(tmp_path / "other.db")
        con.execute("CREATE TABLE things (id INTEGER)")
        con.close()
        uri, why = f"sqlite:///{tmp_path}/other.db", "it has no table 'experiments'"
    elif case == "empty folder":
        (tmp_path / "mlruns").mkdir()
        uri, why = str(tmp_path / "mlruns"), "the folder holds no experiment (no */meta.yaml)"
    elif case == "no trash":
        (tmp_path / "mlruns" / "0").mkdir(parents=True)
        (tmp_path / "mlruns" / "0" / "meta.yaml").write_text("name: Default\n")
        uri, why = str(tmp_path / "mlruns"), "it has no .trash folder"
    else:
        uri, why = "http://127.0.0.1:1/", "give sqlite:///FILE"
    refused(tmp_path, uri, why)


def test_one_source_at_a_time(tmp_path):
    done = mlmd("import", "--from-mlflow", "sqlite:///x.db", "--from-exercise", "old.db", "--db", tmp_path / "m.db",
                cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == (
        "mlmd-exercise: error: give a FILE of JSON lines, --from-exercise OLD_DB, --from-mlflow URI or "
        "--from-openlineage FILE, one of them\n")


def test_other_commands_never_import_mlflow(tmp_path):
    code = ("import sys\nfrom mlmd_exercise.cli.main import main\n"
            "for args in (['--help'], ['import', '--help'], ['states', '--db', sys.argv[1]]):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print([m for m in ('mlflow', 'sqlalchemy') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.db")], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.stdout.splitlines()[-1] == "[]", done.stderr


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_an_mlflow_database_on_a_server_imports_read_only(engine, tmp_path):
    """MLflow's database store on the test's PostgreSQL or MariaDB server (drivers pg8000 and
    PyMySQL, which the package installs): imported, and never written to."""
    import sqlalchemy

    from conftest import server_base

    base = server_base(engine).rstrip("/")
    driver = {"postgresql": "postgresql+pg8000", "mysql": "mysql+pymysql"}[engine]
    base = driver + base[len(engine):]
    name = f"mlflow_{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:12]}"
    admin = sqlalchemy.create_engine(base + ("/postgres" if engine == "postgresql" else "/"),
                                     isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.exec_driver_sql(f"CREATE DATABASE {name}")
    uri = f"{base}/{name}"
    made = build(uri, tmp_path, "story")
    db = tmp_path / "metadata.db"
    first = mlmd("import", "--from-mlflow", uri, "--db", db, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"imported {STORY_RUNS} runs from ") and "***@" in first.stdout.splitlines()[0]
    again = mlmd("import", "--from-mlflow", uri, "--db", db, cwd=tmp_path)
    assert again.stdout.startswith("imported 0 runs") and f"({STORY_RUNS} were already there)" in again.stdout
    artifacts = {a["uri"]: a for a in ok_json(db, "ls", "artifacts")}
    walk = ok_json(db, "lineage", "--artifact", artifacts["models:/clf/2"]["id"], "--direction", "upstream")
    assert {x["name"] for x in walk["executions"]} == {"mlflow:" + made["train"], "mlflow:" + made["finetune"]}
    assert (tmp_path / "train.csv").as_uri() in [a["uri"] for a in walk["artifacts"]]
    # Without its Default experiment MLflow's client would make it again: the session refuses.
    store = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    with store.begin() as con:
        con.exec_driver_sql("DELETE FROM experiment_tags WHERE experiment_id = 0")
        con.exec_driver_sql("DELETE FROM experiments WHERE experiment_id = 0")
    done = mlmd("import", "--from-mlflow", uri, "--db", tmp_path / "other.db", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "MLflow would change" in done.stderr and "read" in done.stderr.lower() and "(1792" not in done.stderr
    assert "{'S'" not in done.stderr, done.stderr  # the server's message, not the driver's fields
    assert not (tmp_path / "other.db").exists()
    with store.connect() as con:
        assert con.exec_driver_sql("SELECT COUNT(*) FROM experiments WHERE experiment_id = 0").scalar() == 0
    with admin.connect() as con:
        con.exec_driver_sql(f"DROP DATABASE {name}")
