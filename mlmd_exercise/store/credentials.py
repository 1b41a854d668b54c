"""Passwords from where database tools keep them, so that none need be on the command line.

A password on the command line (`--db postgresql://user:PASSWORD@...`) shows in `ps` for as
long as the command runs. An address with no password takes it from, in this order:

    PostgreSQL   $PGPASSWORD, then the password file $PGPASSFILE or ~/.pgpass
                 (host:port:database:user:password lines, * for any, \\: and \\\\ escaped;
                 ignored unless only its owner may read it, as libpq does)
    MySQL        the [client] section of ~/.my.cnf (password=, and user= where the address
                 names none; ignored if anyone may write it, as the mysql client does), then
                 $MYSQL_PWD

and the whole address may come from a file, `--db @path` (or $MLMD_STORE=@path): its first
line. Neither the file's name nor an environment variable is the password, so `ps` shows
none; an environment variable is still readable by the same user (and root) in
/proc/PID/environ, a file by whoever its permissions let.
"""

from __future__ import annotations

import configparser
import logging
import os
import stat
from pathlib import Path
from typing import List, Optional, Tuple

from mlmd_exercise.errors import StoreError

__all__ = ["address_from_file", "pg_password", "mysql_login"]

log = logging.getLogger(__name__)


def address_from_file(text: str) -> str:
    """The store address held by the file `text` names ("@path": its first non-empty line).

    Raises:
        StoreError: the file cannot be read, or holds no address.
    """
    path = Path(os.path.expanduser(text[1:]))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "not a text file"
        raise StoreError(f"cannot read the store address from '{text}': {reason}") from None
    found = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise StoreError(f"file '{path}' given as --db {text} holds no store address")
    return found[0]


def _pgpass_fields(line: str) -> List[str]:
    """A .pgpass line's five fields (\\: and \\\\ unescaped), as libpq reads them."""
    fields: List[str] = []
    current: List[str] = []
    escaped = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":" and len(fields) < 4:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _private(path: Path, what: str, mode_bits: int, rule: str) -> bool:
    """Whether a credentials file may be read: it exists, and none of `mode_bits` is set."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if not stat.S_ISREG(mode):
        return False
    if mode & mode_bits:
        log.warning("ignoring %s %s: %s", what, path, rule)
        return False
    return True


def pg_password(host: str, port: int, dbname: str, user: str) -> str:
    """The password for a PostgreSQL login that its address gives none for: $PGPASSWORD, else
    the first matching line of $PGPASSFILE or ~/.pgpass; "" if neither has one."""
    if os.environ.get("PGPASSWORD"):
        return os.environ["PGPASSWORD"]
    path = Path(os.environ.get("PGPASSFILE") or os.path.expanduser("~/.pgpass"))
    if not _private(path, "password file", stat.S_IRWXG | stat.S_IRWXO,
                    "others may read it (permissions should be u=rw, 0600, as libpq wants)"):
        return ""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    wanted = (host, str(port), dbname, user)
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        fields = _pgpass_fields(line)
        if len(fields) == 5 and all(f in ("*", w) for f, w in zip(fields, wanted)):
            return fields[4]
    return ""


def _option_value(text: str) -> str:
    """A value of a MySQL option file: quoted (\\ escapes; anything after the closing quote,
    a comment, is left out), or plain up to a # comment."""
    text = text.strip()
    if text[:1] in ("'", '"'):
        escapes = {"b": "\b", "t": "\t", "n": "\n", "r": "\r", "\\": "\\", "s": " ", '"': '"', "'": "'"}
        out: List[str] = []
        i = 1
        while i < len(text) and text[i] != text[0]:
            if text[i] == "\\" and i + 1 < len(text):
                out.append(escapes.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            else:
                out.append(text[i])
                i += 1
        return "".join(out)
    return text.split("#", 1)[0].strip()  # unquoted, a # starts a comment, as the mysql client reads it


def mysql_login(user: str) -> Tuple[str, str]:
    """(user, password) for a MySQL login that its address gives no password for: the [client]
    section of ~/.my.cnf (its user= only where `user` is ""), else $MYSQL_PWD."""
    path = Path(os.path.expanduser("~/.my.cnf"))
    password: Optional[str] = None
    if _private(path, "option file", stat.S_IWGRP | stat.S_IWOTH,
                "others may write it (the mysql client ignores such a file too)"):
        parser = configparser.RawConfigParser(strict=False, allow_no_value=True, comment_prefixes=("#", ";"),
                                              inline_comment_prefixes=None)
        parser.optionxform = lambda name: name.replace("_", "-").lower()  # type: ignore[assignment]
        try:
            parser.read_string(path.read_text(encoding="utf-8", errors="replace"), source=str(path))
        except (OSError, configparser.Error) as e:
            log.warning("ignoring option file %s: %s", path, str(e).splitlines()[0])
        else:
            if parser.has_section("client"):
                section = parser["client"]
                if section.get("password"):
                    password = _option_value(section["password"])
                if not user and section.get("user"):
                    user = _option_value(section["user"])
    if password is None:
        password = os.environ.get("MYSQL_PWD", "")
    return user, password
