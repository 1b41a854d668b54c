"""The throwaway servers' own logs of what they ran (scripts/with-postgres, scripts/with-mysql):
what tests read to show that no statement but the package's own ran, and that no password
reached a server.

    with statements_logged(address) as log:   # the database is made here, empty
        ... open the store, write, read ...
    for text in log.statements(): ...          # every statement run in that database

PostgreSQL logs every statement of a database whose log_statement is 'all' (set here with
ALTER DATABASE, for that database alone), each line prefixed with `db=NAME`. MariaDB's
general query log is server-wide: it is on while any test reads it (each one that does is
a row of a table of the server's own, under a named lock), and a statement belongs to the
database its connection was using.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from mlmd_exercise.store.address import Location, parse_location

__all__ = ["statements_logged", "StatementLog", "outside_literals", "server_log_text"]

PG_LOG = os.environ.get("MLMD_TEST_POSTGRES_LOG", "")
MYSQL_LOG = os.environ.get("MLMD_TEST_MYSQL_LOG", "")
_PG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] db=([^,]*),app=[^:]*: "
                      r"([A-Z]+):  (.*)$")
_PG_STATEMENT = re.compile(r"^(?:statement: |execute [^:]*: )(.*)$", re.DOTALL)
_MY_LINE = re.compile(r"^(?:\d{6}\s+\d{1,2}:\d\d:\d\d)?\s+(\d+) ([A-Z][A-Za-z ]*?)\t(.*)$")


def server_log_text(scheme: str) -> str:
    """The whole of a server's log, as the tests' grep for planted passwords reads it."""
    path = PG_LOG if scheme == "postgresql" else MYSQL_LOG
    return Path(path).read_text(errors="replace") if path and Path(path).is_file() else ""


def outside_literals(sql: str, backslash_escapes: bool) -> str:
    """The statement with every string literal taken out: what ran as SQL rather than as data.
    PostgreSQL: '...' ('' inside) and E'...' (backslash escapes); MySQL (`backslash_escapes`):
    '...' and "..." with backslash escapes and doubled quotes."""
    out: List[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        quote = char if char == "'" or (char == '"' and backslash_escapes) else ""
        escapes = backslash_escapes
        if not quote and char in "eE" and sql[i + 1:i + 2] == "'" and (i == 0 or not sql[i - 1].isalnum()):
            quote, escapes, i = "'", True, i + 1
        if not quote:
            out.append(char)
            i += 1
            continue
        i += 1
        while i < n:
            if escapes and sql[i] == "\\":
                i += 2
            elif sql[i] == quote and sql[i + 1:i + 2] == quote:
                i += 2
            elif sql[i] == quote:
                i += 1
                break
            else:
                i += 1
        out.append("''")
    return "".join(out)


class StatementLog:
    """The statements a server ran in one database, from the moment it was made."""

    def __init__(self, scheme: str, dbname: str, marker_sql) -> None:
        self.scheme, self.dbname = scheme, dbname
        self._mark = marker_sql

    def statements(self, deadline_s: float = 60.0) -> List[str]:
        """Every statement run in the database so far: a marker is run, and the log read
        until it shows (the server may write its log a little later)."""
        marker = f"mark_{uuid.uuid4().hex}"
        self._mark(marker)
        give_up = time.monotonic() + deadline_s
        while True:
            found = self._read()
            if any(marker in s for s in found):
                return [s for s in found if marker not in s]
            if time.monotonic() > give_up:
                raise AssertionError(f"the server's log never showed statement {marker}")
            time.sleep(0.1)

    def _read(self) -> List[str]:
        if self.scheme == "postgresql":
            return _pg_statements(Path(PG_LOG).read_text(errors="replace"), self.dbname)
        return _mysql_statements(Path(MYSQL_LOG).read_text(errors="replace"), self.dbname)

    def outside_literals(self) -> List[str]:
        """Each statement with its string literals taken out (see `outside_literals`)."""
        return [outside_literals(s, self.scheme == "mysql") for s in self.statements()]


def _records(text: str, first_line: "re.Pattern[str]") -> List[Tuple["re.Match[str]", List[str]]]:
    """Each record of a log: the match of its first line, and the lines that continue it (a
    statement of several lines)."""
    found: List[Tuple["re.Match[str]", List[str]]] = []
    for line in text.splitlines():
        match = first_line.match(line)
        if match is not None:
            found.append((match, []))
        elif found:
            found[-1][1].append(line)
    return found


def _pg_statements(text: str, dbname: str) -> List[str]:
    found: List[str] = []
    for match, more in _records(text, _PG_LINE):
        db, level, message = match.groups()
        statement = _PG_STATEMENT.match(message) if level == "LOG" else None
        if db == dbname and (statement is not None or level == "STATEMENT"):
            found.append("\n".join([statement.group(1) if statement is not None else message] + more))
    return found


def _mysql_statements(text: str, dbname: str) -> List[str]:
    database: Dict[str, str] = {}  # thread id -> the database it uses
    found: List[str] = []
    for match, more in _records(text, _MY_LINE):
        thread, command, argument = match.groups()
        if command == "Connect":
            on = re.search(r" on (\S*)", argument)
            database[thread] = on.group(1) if on else ""
        elif command == "Init DB":
            database[thread] = argument.strip()
        elif command in ("Query", "Execute", "Prepare"):
            use = re.match(r"(?i)\s*use\s+`?([^`\s;]+)`?", argument)
            if use:
                database[thread] = use.group(1)
            if database.get(thread) == dbname:
                found.append("\n".join([argument] + more))
    return found


@contextlib.contextmanager
def statements_logged(address: str) -> Iterator[StatementLog]:
    """The database of a server store's address made, empty, with every statement run in it
    from now on logged by the server; skips the test where the server keeps no such log."""
    from mlmd_exercise.store import mysql, postgres

    loc = parse_location(address)
    holder = uuid.uuid4().hex  # MySQL: this test, among those that read the general log
    if loc.scheme == "postgresql":
        if not PG_LOG:
            pytest.skip("$MLMD_TEST_POSTGRES_LOG is not set (scripts/with-postgres sets it)")
        postgres.ensure_database(loc, True)
        admin = postgres.Admin(loc, "postgres")
        quoted = '"' + loc.dbname.replace('"', '""') + '"'
        admin.run(f"ALTER DATABASE {quoted} SET log_statement = 'all'")
        admin.close()

        def mark(marker: str) -> None:
            own = postgres.Admin(loc, loc.dbname)  # a new session: it has log_statement = 'all'
            own.run(f"SELECT '{marker}'")
            own.close()
    else:
        if not MYSQL_LOG:
            pytest.skip("$MLMD_TEST_MYSQL_LOG is not set (scripts/with-mysql sets it)")
        mysql.ensure_database(loc, True)
        _general_log(loc, holder, True)

        def mark(marker: str) -> None:
            own = mysql.Admin(loc, loc.dbname)
            own.execute(f"SELECT '{marker}'")
            own.close()
    try:
        yield StatementLog(loc.scheme, loc.dbname, mark)
    finally:
        if loc.scheme == "mysql":
            _general_log(loc, holder, False)


def _general_log(loc: Location, holder: str, reading: bool) -> None:
    """MariaDB's general log on while any test reads it: `holder` joins or leaves those that do
    (rows of mlmd_test_logs.readers), under a named lock, the last to leave turning it off."""
    from mlmd_exercise.store import mysql

    admin = mysql.Admin(loc, None)
    try:
        while admin.execute("SELECT GET_LOCK('mlmd_test_general_log', 10)")[0][0] != 1:
            pass
        admin.execute("CREATE DATABASE IF NOT EXISTS mlmd_test_logs")
        admin.execute("CREATE TABLE IF NOT EXISTS mlmd_test_logs.readers (id VARCHAR(32) PRIMARY KEY)")
        if reading:
            admin.execute("INSERT INTO mlmd_test_logs.readers VALUES (%s)", (holder,))
            admin.execute("SET GLOBAL general_log = 1")
        else:
            admin.execute("DELETE FROM mlmd_test_logs.readers WHERE id = %s", (holder,))
            if admin.execute("SELECT COUNT(*) FROM mlmd_test_logs.readers")[0][0] == 0:
                admin.execute("SET GLOBAL general_log = 0")
        admin.execute("SELECT RELEASE_LOCK('mlmd_test_general_log')")
    finally:
        admin.close()
