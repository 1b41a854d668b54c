"""environment.py: every run records how to reproduce it (code, command, packages, host)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import write
from mlmd_exercise import environment as env
from mlmd_exercise.write import capture
from raw_mlmd import raw_mlmd

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit of train.py."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "train.py", TRAIN)
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    return repo


# A user's script: run as `python train.py STORE ACCURACY`, it imports joblib only inside
# the run, after the execution was recorded RUNNING.
TRAIN = textwrap.dedent("""
    import sys
    import mlmd_exercise as mx

    tracker = mx.Tracker(sys.argv[1])
    with tracker.execution("Trainer", params={"C": 1.0}) as run:
        import joblib
        run.log_metrics({"val_accuracy": float(sys.argv[2])})
    print(run.id)
""")


def train(repo: Path, store: str, accuracy: str, **kw) -> dict:
    """Runs train.py in its own process, in `repo`, and returns its execution's properties."""
    done = subprocess.run([sys.executable, "train.py", store, accuracy], cwd=repo,
                          capture_output=True, text=True, timeout=120, **kw)
    assert done.returncode == 0, done.stderr
    return dict(mx.get_execution(mx.open_store(store), int(done.stdout)).properties)


def test_a_run_records_its_commit_command_python_packages_and_host(repo, tmp_path):
    store = str(tmp_path / "metadata.db")
    props = train(repo, store, "0.80")
    assert props[env.GIT_COMMIT] == git(repo, "rev-parse", "HEAD")
    assert props[env.GIT_DIRTY] == 0
    assert props[env.COMMAND] == f"train.py {store} 0.80"
    assert props[env.CWD] == str(repo.resolve())
    assert props[env.PYTHON] == platform.python_version()
    assert props[env.EXECUTABLE] == sys.executable
    assert props["host"] == platform.node() and isinstance(props["pid"], int) and "pid_start" in props
    assert props[env.USER]
    packages = env.parse_packages(props[env.PACKAGES])
    # Imported inside the run, after it was recorded RUNNING: recorded when it finished.
    assert packages["joblib"] == importlib.metadata.version("joblib")
    # The store's own library is recorded where it was imported: ml-metadata, where it is the backend.
    if mx.open_store(store).backend.name == "mlmd":
        assert packages["ml-metadata"] == importlib.metadata.version("ml-metadata")
    else:
        assert "ml-metadata" not in packages
    assert "matplotlib" not in packages and "pandas" not in packages  # installed, not imported
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", props[env.INSTALLED_HASH])
    assert props["C"] == 1.0 and props["val_accuracy"] == 0.80  # params stay as they were


def test_an_uncommitted_change_is_recorded_as_dirty(repo, tmp_path):
    store = str(tmp_path / "metadata.db")
    commit = git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text(TRAIN + "# tried something\n")
    props = train(repo, store, "0.95")
    assert (props[env.GIT_COMMIT], props[env.GIT_DIRTY]) == (commit, 1)
    write(repo / "notes.txt", "an untracked file is not a change to the code")
    git(repo, "commit", "-q", "-am", "second")
    props = train(repo, store, "0.95")
    assert (props[env.GIT_COMMIT], props[env.GIT_DIRTY]) == (git(repo, "rev-parse", "HEAD"), 0)
    assert props[env.GIT_COMMIT] != commit


def test_no_git_keys_outside_a_repository_or_without_git(tmp_path):
    folder = tmp_path / "plain"
    write(folder / "train.py", TRAIN)
    store = str(tmp_path / "metadata.db")
    props = train(folder, store, "0.5")
    assert env.GIT_COMMIT not in props and env.GIT_DIRTY not in props and env.COMMAND in props
    no_git = {**os.environ, "PATH": str(tmp_path / "nowhere")}  # git cannot be found
    props = train(folder, store, "0.5", env=no_git)
    assert env.GIT_COMMIT not in props and props[env.PYTHON] == platform.python_version()


def test_the_git_state_is_asked_again_when_the_index_changes(repo, monkeypatch):
    monkeypatch.setattr(capture, "GIT_TTL_S", 3600.0)  # only the index may tell it
    first = capture.git_state(str(repo))
    assert first == (git(repo, "rev-parse", "HEAD"), False)
    (repo / "train.py").write_text("changed\n")
    git(repo, "add", "train.py")  # rewrites the index
    assert capture.git_state(str(repo)) == (first[0], True)
    git(repo, "commit", "-q", "-m", "second")
    assert capture.git_state(str(repo)) == (git(repo, "rev-parse", "HEAD"), False)


def test_a_repository_without_a_commit_has_no_git_state(tmp_path):
    git(tmp_path, "init", "-q")
    assert capture.git_state(str(tmp_path)) is None


def test_the_git_state_is_cached_within_its_time_to_live(repo, monkeypatch):
    calls = []
    real = capture.git
    monkeypatch.setattr(capture, "git", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(capture, "GIT_TTL_S", 3600.0)
    capture.forget_git_states()
    for _ in range(5):
        capture.git_state(str(repo))
    assert len(calls) == 2  # rev-parse and status, once: no process per run


def test_installed_hash_covers_every_installed_distribution():
    listed = sorted({f"{capture.normalize_name(d.metadata['Name'])}=={d.version}"
                     for d in importlib.metadata.distributions()})
    expected = "sha256:" + hashlib.sha256("\n".join(listed).encode()).hexdigest()
    mine = sorted(f"{n}=={v}" for n, v in capture.installed_distributions().items())
    assert set(mine) ^ set(listed) == set()
    assert capture.installed_hash() == expected


def test_imported_packages_names_distributions_not_modules():
    import sklearn  # noqa: F401  (module sklearn, distribution scikit-learn)

    packages = capture.imported_packages()
    assert packages["scikit-learn"] == importlib.metadata.version("scikit-learn")
    assert "sklearn" not in packages and "json" not in packages and "os" not in packages
    assert env.parse_packages(env.format_packages(packages)) == packages


@pytest.mark.parametrize("key, is_env", [
    ("host", True), ("pid", True), ("pid_start", True), ("env.git_commit", True),
    ("env.anything_later", True), ("C", False), ("accuracy", False), ("environment", False),
])
def test_environment_keys_are_told_from_params(key, is_env):
    assert env.is_environment_key(key) is is_env


def test_split_environment():
    params, environment = env.split_environment({"C": 1.0, "host": "h", "env.python": "3.11.7"})
    assert params == {"C": 1.0} and environment == {"host": "h", "env.python": "3.11.7"}


def test_a_part_that_cannot_be_read_never_fails_the_run(tracker, monkeypatch):
    def broken(cwd=None):
        raise RuntimeError("git exploded")

    monkeypatch.setattr(capture, "git_state", broken)
    with tracker.execution("Trainer", params={"C": 2}) as run:
        pass
    props = run.execution().properties
    assert run.execution().state == "COMPLETE" and props["C"] == 2
    assert env.GIT_COMMIT not in props and props[env.PYTHON] == platform.python_version()


def test_capture_in_a_deleted_working_directory(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    captured = capture.capture()
    assert env.CWD not in captured and captured["host"] == platform.node()


def test_show_prints_the_environment_apart_from_params(run_cli, repo, tmp_path):
    store = str(tmp_path / "metadata.db")
    train(repo, store, "0.80")
    lines = run_cli("show", "execution", "1", "--db", store).out.splitlines()
    props = lines[lines.index("  properties") + 1:lines.index("  recorded with")]
    assert [line.split()[0] for line in props] == ["C", "metric_names", "state", "val_accuracy"]
    block = lines[lines.index("  recorded with") + 1:lines.index("  events")]
    named = [line.split()[0] for line in block if not line.startswith("      ")]
    assert named[:4] == ["git_commit", "command", "cwd", "python"]
    assert named[-3:] == ["host", "pid", "pid_start"]
    assert re.fullmatch(rf"    git_commit +{git(repo, 'rev-parse', 'HEAD')} \(clean\)", block[0])
    assert any(re.fullmatch(r" +joblib==[\w.]+", line) for line in block)
    assert re.search(r"pid_start +\d+ \(clock ticks after boot\)", "\n".join(block))
    data = json.loads(run_cli("show", "execution", "1", "--json", "--db", store).out)
    assert set(data) == {"kind", "node", "events", "experiments", "environment", "same_content"}
    assert data["environment"][env.GIT_DIRTY] == 0 and "C" not in data["environment"]
    assert set(data["environment"]) <= set(data["node"]["properties"])  # which are all kept


def test_show_of_a_run_recorded_before_environments(run_cli, store, db):
    """Stores written before this module hold host, pid and pid_start among the params."""
    tracker = mx.Tracker(store)
    with tracker.execution("Trainer", params={"C": 1.0}) as run:
        pass
    [execution] = raw_mlmd(store).get_executions_by_id([run.id])
    for key in [k for k in execution.custom_properties if k.startswith(env.PREFIX)]:
        del execution.custom_properties[key]
    raw_mlmd(store).put_executions([execution])
    out = run_cli("show", "execution", run.id, "--db", db).out
    block = out[out.index("  recorded with"):out.index("  events")].splitlines()[1:]
    assert [line.split()[0] for line in block] == ["host", "pid", "pid_start"]
