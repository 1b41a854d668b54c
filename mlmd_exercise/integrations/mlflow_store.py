"""An MLflow tracking store opened for `import --from-mlflow`: the URI checked before MLflow's
client sees it (that client would make its tables in any database, and its folders in any
path), then the client, with every SQL connection it opens read-only in the database itself
(SQLite's query_only, PostgreSQL's and MySQL's read-only sessions), and what MLflow raises
said in one line naming the URI. mlflow is imported here (and by mlflow_import.py, which
reads through this client) only when an import from MLflow runs.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Tuple
from urllib.parse import unquote, urlparse

from mlmd_exercise import masking
from mlmd_exercise.errors import MlmdExerciseError

__all__ = ["mlflow_client", "local_path"]

_TABLES = {"experiments", "runs", "params", "metrics", "tags"}  # what makes a database MLflow's
_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def _not_mlflow(uri: str, why: str) -> MlmdExerciseError:
    return MlmdExerciseError(f"'{masking.mask(uri, whole=True)}' is not an MLflow tracking store: {why}")


def local_path(uri: str) -> Optional[Path]:
    if uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path))
    return None if "://" in uri else Path(uri)


def _checked_uri(uri: str) -> Tuple[str, str]:
    """(kind, the URI MLflow's client is given): "sql" or "file". Refuses, naming the URI,
    what is not an MLflow store this import reads, before any client sees it."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme == "sqlite":  # sqlite:///relative.db, sqlite:////absolute.db (SQLAlchemy's form)
        db = Path(unquote(uri.split("://", 1)[1][1:].split("?", 1)[0]))
        _check_sqlite(uri, db)
        return "sql", f"sqlite:///{db.resolve()}"
    if scheme in _SQL_SCHEMES:
        return "sql", uri
    path = local_path(uri)
    if path is None:
        raise _not_mlflow(uri, "give sqlite:///FILE, a PostgreSQL or MySQL database URI, or an mlruns/ folder")
    if path.is_file():  # an SQLite file named without its scheme
        _check_sqlite(uri, path)
        return "sql", f"sqlite:///{path.resolve()}"
    if not path.is_dir():
        raise _not_mlflow(uri, "nothing is there")
    if not any((p / "meta.yaml").is_file() for p in path.iterdir() if p.is_dir()):
        raise _not_mlflow(uri, "the folder holds no experiment (no */meta.yaml)")
    if not (path / ".trash").is_dir():  # MLflow's file store would make it: the import only reads
        raise _not_mlflow(uri, "it has no .trash folder, which MLflow makes in every mlruns/ folder "
                          "(create it to import: mkdir .trash)")
    return "file", path.resolve().as_uri()


def _check_sqlite(uri: str, path: Path) -> None:
    if not path.is_file():
        raise _not_mlflow(uri, "no such file" if not path.exists() else "not a file")
    with path.open("rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise _not_mlflow(uri, "not an SQLite database")
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise _not_mlflow(uri, str(e)) from None
    if not _TABLES <= tables:
        raise _not_mlflow(uri, f"it has no table '{sorted(_TABLES - tables)[0]}'")


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    """Every connection SQLAlchemy opens during the import refuses to write."""
    module = type(dbapi_connection).__module__
    cursor = dbapi_connection.cursor()
    try:
        if module.startswith("sqlite3"):
            cursor.execute("PRAGMA query_only = ON")
        elif module.startswith(("psycopg", "pg8000")):
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        elif module.startswith(("pymysql", "MySQLdb", "mysql")):
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        else:
            return
    finally:
        cursor.close()
    if not module.startswith("sqlite3"):
        dbapi_connection.commit()  # PostgreSQL undoes a SET with the transaction it was made in


@contextmanager
def mlflow_client(uri: str) -> Iterator[Any]:
    """MLflow's client on the store at `uri`, every SQL connection it opens read-only, MLflow's
    log lines and warnings quiet; what MLflow raises inside (opening or reading) becomes one
    MlmdExerciseError naming the URI, here alone.

    Raises:
        MlmdExerciseError: not an MLflow store, MLflow not installed, or MLflow refuses or fails.
    """
    kind, client_uri = _checked_uri(uri)
    try:
        import sqlalchemy
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as e:
        raise MlmdExerciseError(f"importing from MLflow needs MLflow, which is not installed here ({e.name}): "
                                "pip install mlflow-skinny sqlalchemy alembic") from None
    # The import reads and sends nothing anywhere: no usage report from MLflow's client.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    saved = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3.13+ refuses mlruns/ unless told: this reads it
    # MLflow's own log lines and warnings (its tracebacks included) are not the CLI's: what
    # goes wrong is said once, in the error raised here.
    quiet, level = logging.getLogger("mlflow"), logging.getLogger("mlflow").level
    quiet.setLevel(logging.CRITICAL + 1)
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", _read_only)
    shown = masking.mask(uri, whole=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if kind == "sql":
                    _check_tables(uri, client_uri, sqlalchemy)
                yield MlflowClient(tracking_uri=client_uri, registry_uri=client_uri)
            except MlflowException as e:
                raise _refused(shown, e.message) from None
            except sqlalchemy.exc.SQLAlchemyError as e:
                raise _refused(shown, _driver_text(getattr(e, "orig", None) or e), "cannot read") from None
    finally:
        quiet.setLevel(level)
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", _read_only)
        if saved is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = saved


def _check_tables(uri: str, client_uri: str, sqlalchemy: Any) -> None:
    engine = sqlalchemy.create_engine(client_uri)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    if not _TABLES <= tables:
        raise _not_mlflow(uri, f"it has no table '{sorted(_TABLES - tables)[0]}'")


def _first_line(text: str) -> str:
    """An error's message on one line, without the SQL statement SQLAlchemy appends."""
    line = " ".join(str(text).split("[SQL:")[0].split())
    found = re.search(r"\{'S': .*'M': '([^']*)'.*\}", line)  # pg8000's fields of PostgreSQL's error
    if found:
        line = line[:found.start()] + found.group(1) + line[found.end():]
    line = re.sub(r"\(\d+, [\"'](.*)[\"']\)$", r"\1", line)  # PyMySQL's (code, 'message')
    return masking.mask(re.sub(r"^\([\w.]+\) ", "", line))[:300]  # "(sqlite3.OperationalError) ..."


def _driver_text(error: BaseException) -> str:
    """A database driver's message: pg8000 gives PostgreSQL's fields as a dict, 'M' the message."""
    first = error.args[0] if error.args else None
    return str(first.get("M", first)) if isinstance(first, dict) else str(error)


def _refused(shown: str, message: str, verb: str = "MLflow refuses") -> MlmdExerciseError:
    line = _first_line(message)
    if "readonly database" in line or "read-only transaction" in line or "READ ONLY" in line:
        return MlmdExerciseError(f"MLflow would change '{shown}' to open it ({line}): the import only reads; "
                                 "open the store with MLflow once, then import it")
    return MlmdExerciseError(f"{verb} '{shown}': {line}")
