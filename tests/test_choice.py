"""store/choice.py and `doctor`: which backend opens stores, and why."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

from mlmd_exercise.errors import StoreError
from mlmd_exercise.store import choice


def _installed(monkeypatch, version):
    """ml-metadata as if `version` were installed (None: not installed)."""
    def fake(name):
        if name != "ml-metadata":
            return metadata.version(name)
        if version is None:
            raise metadata.PackageNotFoundError(name)
        return version
    monkeypatch.setattr(metadata, "version", fake)


def test_ml_metadata_is_the_default_where_it_is_installed(monkeypatch):
    monkeypatch.delenv(choice.ENV_BACKEND, raising=False)
    _installed(monkeypatch, "1.17.1")
    found = choice.choose()
    assert (found.name, found.reason, found.explicit) == (
        "mlmd", "ml-metadata 1.17.1 is installed (the reference)", False)


def test_postgresql_stores_open_with_the_native_backend_unless_mlmd_is_asked_for(monkeypatch):
    """ml-metadata 1.17 quotes a backslash wrongly in its PostgreSQL SQL (tests/test_injection.py):
    PostgreSQL stores open with the native backend by default, ml-metadata only where asked."""
    monkeypatch.delenv(choice.ENV_BACKEND, raising=False)
    _installed(monkeypatch, "1.17.1")
    found = choice.choose(database="postgresql")
    assert (found.name, found.explicit) == ("native", False)
    assert found.reason.startswith("PostgreSQL stores open with the native backend: ml-metadata 1.17 quotes a "
                                   "backslash wrongly in its PostgreSQL SQL")
    assert {db: c.name for db, c in choice.choices().items()} == {
        "sqlite": "mlmd", "postgresql": "native", "mysql": "mlmd"}
    assert choice.choose("mlmd", "postgresql") == choice.Choice("mlmd", "chosen by --backend", explicit=True)
    monkeypatch.setenv(choice.ENV_BACKEND, "mlmd")
    assert {c.name for c in choice.choices().values()} == {"mlmd"}


@pytest.mark.parametrize("version, why", [
    (None, "ml-metadata is not installed"),
    ("0.13.1.dev0", "ml-metadata 0.13.1.dev0 is older than 1.14"),  # what pip picks on Python 3.13
    ("1.13.0", "ml-metadata 1.13.0 is older than 1.14"),
])
def test_native_where_ml_metadata_is_missing_or_too_old(monkeypatch, version, why):
    monkeypatch.delenv(choice.ENV_BACKEND, raising=False)
    _installed(monkeypatch, version)
    assert (choice.choose().name, choice.choose().reason) == ("native", why)


def test_a_backend_is_chosen_by_name(monkeypatch):
    _installed(monkeypatch, "1.17.1")
    monkeypatch.setenv(choice.ENV_BACKEND, "native")
    assert (choice.choose().name, choice.choose().reason) == ("native", "chosen by $MLMD_BACKEND")
    assert choice.choose("mlmd").reason == "chosen by --backend"  # the option wins
    with pytest.raises(StoreError, match=r"^unknown backend 'sql' \(from --backend\): use mlmd or native$"):
        choice.choose("sql")
    _installed(monkeypatch, None)
    with pytest.raises(StoreError, match=r"^backend 'mlmd' \(from --backend\) cannot be used: ml-metadata "
                                         r"is not installed; use the native backend"):
        choice.choose("mlmd")


def test_doctor_says_which_backend_and_why(run_cli, demo_dir, monkeypatch):
    monkeypatch.delenv(choice.ENV_BACKEND, raising=False)
    db = demo_dir / "metadata.db"
    result = run_cli("doctor", "--json", "--db", db)
    data = json.loads(result.out)
    assert result.code == 0 and set(data) == {
        "version", "python", "backend", "why", "backends", "mlmd_library", "store", "store_status"}
    missing = choice.mlmd_missing()
    if missing is None:  # Python 3.9 to 3.11: ml-metadata is the default, but for PostgreSQL
        assert (data["backend"], data["mlmd_library"]) == ("mlmd", metadata.version("ml-metadata"))
        assert {db: b["backend"] for db, b in data["backends"].items()} == {
            "sqlite": "mlmd", "postgresql": "native", "mysql": "mlmd"}
    else:
        assert (data["backend"], data["why"]) == ("native", f"ml-metadata {missing}")
        assert data["mlmd_library"] == f"not usable: {missing}"
        assert {b["backend"] for b in data["backends"].values()} == {"native"}
    assert data["backends"]["postgresql"]["why"] == choice.choose(database="postgresql").reason
    assert data["store_status"] == "an MLMD store with 1 execution"
    text = run_cli("doctor", "--db", db).out.splitlines()
    assert text[1] == f"backend: {data['backend']} ({data['why']})"
    assert text[4:] == ["backends by kind of store:"] + [
        f"  {name.ljust(10)}  {data['backends'][db]['backend'].ljust(6)}  {data['backends'][db]['why']}"
        for db, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"), ("mysql", "MySQL"))]
    missing = run_cli("doctor", "--db", demo_dir / "none.db").out.splitlines()[3]
    assert missing.startswith(f"store: {demo_dir / 'none.db'}: no MLMD store at")


def test_an_unknown_backend_in_the_environment_is_one_line(run_cli, demo_dir, monkeypatch):
    monkeypatch.setenv(choice.ENV_BACKEND, "oracle")
    result = run_cli("states", "--db", demo_dir / "metadata.db")
    assert (result.code, result.out) == (2, "")
    assert result.err == "mlmd-exercise: error: unknown backend 'oracle' (from $MLMD_BACKEND): use mlmd or native\n"


def test_one_process_never_opens_an_sqlite_file_with_both_backends_at_once(tmp_path):
    """ml-metadata brings its own copy of SQLite: with Python's sqlite3 on the same file in
    the same process, each would drop the other's locks. Either backend, not both at once."""
    import gc

    import mlmd_exercise as mx

    if choice.mlmd_missing():
        pytest.skip("ml-metadata is not installed here: only one backend can open a store")
    path = tmp_path / "metadata.db"
    first = mx.open_store(path, create=True, backend="mlmd")
    with pytest.raises(StoreError, match=f"^store '{path}' is open with the mlmd backend in this process"):
        mx.open_store(path, backend="native")
    del first
    gc.collect()
    second = mx.open_store(path, backend="native")
    with pytest.raises(StoreError, match="is open with the native backend in this process: close it"):
        mx.open_store(path, backend="mlmd")
    assert second.backend.name == "native"
    del second
    gc.collect()
    assert mx.open_store(path, backend="mlmd").backend.name == "mlmd"
