"""Secrets kept out of what the package records, prints, exports, logs and shows.

One set of rules for the whole package (docs/team-stores.md's "What is masked" lists them):

- a URL's password: `scheme://user:SECRET@host` becomes `scheme://user:***@host`; the password
  runs to the last `@` before the host, whatever it holds (`#`, `/`, `?`, `@`, `:`, spaces in a
  value that is one URL); the word `password` itself, as help texts write an address, is left;
- `KEY=VALUE` where the key names a secret (`password=`, `token=`, `AWS_SECRET_ACCESS_KEY=`,
  `db.password=`): the value becomes `***`;
- `--OPTION VALUE` and `--OPTION=VALUE` where the option names a secret (`--password`,
  `--api-key`, `--token`); in the command line of a MySQL or MariaDB client, also `-pSECRET`
  (there `--password VALUE` is not a password: that client asks for it);
- a property whose key names a secret: its whole value becomes `***`.

A key names a secret when its last word is password, passwd, passphrase, secret, token,
credential or credentials, or its last two are api key, access key, private key or secret key
(words split at `_`, `-`, `.`, spaces and camelCase; `apikey`, `PGPASSWORD` and `MYSQL_PWD`
count too). So `db_password`, `hf_token`, `AWS_SECRET_ACCESS_KEY` and `apiKey` name secrets;
`max_tokens`, `token_type_ids`, `password_file`, `secret_name` and a tokenizer's `pad_token`
(`eos_token`, `bos_token`, ...) do not: a false positive would change a user's data.

This module imports nothing of the package: the store, the writers, the CLI and the explorer
all use it.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Any, Dict, List, Mapping, Sequence

__all__ = ["MASK", "COMMAND_KEY", "is_secret_key", "mask", "mask_argv", "mask_command", "mask_value",
           "mask_values"]

MASK = "***"
COMMAND_KEY = "env.command"  # environment.COMMAND: a shell-quoted command line, masked as one
_LAST_WORDS = frozenset({"password", "passwd", "passphrase", "secret", "credential", "credentials",
                         "apikey", "accesskey", "privatekey", "secretkey", "pgpassword"})
_KEY_PAIRS = frozenset({"api", "access", "private", "secret"})  # ... followed by "key"
# Words before "token" that make it a tokenizer's setting, not a credential.
_NOT_CREDENTIAL_TOKENS = frozenset({"pad", "eos", "bos", "unk", "sep", "cls", "mask", "start", "end",
                                    "special", "max", "min", "num", "n", "first", "last"})
_MYSQL_CLIENTS = frozenset({"mysql", "mariadb", "mysqldump", "mariadb-dump", "mysqladmin", "mariadb-admin",
                            "mysqlimport", "mariadb-import", "mysqlcheck", "mariadb-check", "mysqlshow",
                            "mariadb-show", "mysqlbinlog", "mariadb-binlog", "mysqlslap", "mariadb-slap"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_PLACEHOLDER = "password"  # user:password@host, as help texts and examples write an address
_PORT_AND_PATH = re.compile(r"\d{1,5}(/.*)?")  # host:8080/path@x has no password
# KEY=VALUE: a key at a word's start (after --, + or ++ of an override, ? or & of a query);
# the value is quoted, or runs to whitespace, &, or a quote.
_ASSIGNMENT = re.compile(r"""(?<![\w.\-])([A-Za-z_][\w.\-]*)=("[^"]*"|'[^']*'|[^\s&'"]*)""")
# A MySQL or MariaDB client (by name, or a path to it), the end of its command, and its -pSECRET.
_MYSQL_TOOL = re.compile(r"(?<![\w.\-])(?:[\w.\-]*/)*(mysql[\w\-]*|mariadb[\w\-]*)(?![\w\-])")
_COMMAND_END = re.compile(r"[;|&\n]")
_MYSQL_P = re.compile(r"(?<=\s)-p[^\s'\"]+")
# --OPTION VALUE and --OPTION=VALUE
_OPTION = re.compile(r"""(?<![\w\-])(--[A-Za-z][\w.\-]*)(=|\s+)("[^"]*"|'[^']*'|[^\s'"]+)""")
_KNOWN: Dict[str, bool] = {}  # key -> is_secret_key(key): keys repeat, on every node


def _secret_word(text: str) -> bool:
    """The quick test before the rules run: every key that names a secret holds one of these
    (plain `in` on the lower-cased text: a case-blind regex takes ten times as long)."""
    low = text.lower()
    return "pass" in low or "secret" in low or "token" in low or "key" in low or "credential" in low or "pwd" in low


def is_secret_key(key: str) -> bool:
    """Whether a key (a param's, an option's, an environment variable's) names a secret."""
    known = _KNOWN.get(key)
    if known is None:
        known = _names_secret(key)
        if len(_KNOWN) < 100_000:  # bounded: keys are few, but another program's may not be
            _KNOWN[key] = known
    return known


def _names_secret(key: str) -> bool:
    words = [w for w in re.split(r"[^a-z0-9]+", _CAMEL.sub("_", key).lower()) if w]
    if not words:
        return False
    last = words[-1]
    if last in _LAST_WORDS or words[-2:] == ["mysql", "pwd"]:
        return True
    if last == "token":
        return len(words) == 1 or words[-2] not in _NOT_CREDENTIAL_TOKENS
    return last == "key" and len(words) > 1 and words[-2] in _KEY_PAIRS


def _url_passwords(text: str, whole: bool) -> str:
    """Every `scheme://user:PASSWORD@` in `text` with the password masked. `whole`: the text is
    one value (a URL may hold spaces); else a URL ends at whitespace."""
    starts = [m.start() for m in _SCHEME.finditer(text)]
    if not starts:
        return text
    out: List[str] = [text[:starts[0]]]
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(text)
        piece = text[start:end]
        if not whole:
            space = re.search(r"\s", piece)
            if space is not None:
                out.append(_one_url(piece[:space.start()]) + piece[space.start():])
                continue
        out.append(_one_url(piece))
    return "".join(out)


def _one_url(url: str) -> str:
    scheme_end = url.index("://") + 3
    at = url.rfind("@")
    if at < scheme_end:
        return url
    userinfo = url[scheme_end:at]
    user, colon, password = userinfo.partition(":")
    if (not colon or "/" in user or password in ("", MASK, _PLACEHOLDER)
            or _PORT_AND_PATH.fullmatch(password)):
        return url
    return f"{url[:scheme_end]}{user}:{MASK}{url[at:]}"


def _masked_assignment(match: "re.Match[str]") -> str:
    key, value = match.group(1), match.group(2)
    if not value or not is_secret_key(key) or value.strip("'\"") == MASK:
        return match.group(0)
    return f"{key}={MASK}"


def _masked_option(match: "re.Match[str]") -> str:
    option, between, value = match.groups()
    if not is_secret_key(option) or value.strip("'\"") == MASK or value.startswith("-"):
        return match.group(0)
    return f"{option}{between}{MASK}"


def _plain(text: str) -> bool:
    """Whether `text` surely holds nothing the rules mask (the quick test most text passes)."""
    return (not ("@" in text and "://" in text) and not (("=" in text or "--" in text) and _secret_word(text))
            and not ("-p" in text and ("mysql" in text or "mariadb" in text)))


def _mysql_passwords(text: str) -> str:
    """`-pSECRET` masked in each MySQL or MariaDB client command within `text` (up to the next
    ;, |, & or line break)."""
    out: List[str] = []
    done = 0
    for tool in _MYSQL_TOOL.finditer(text):
        if tool.start() < done or tool.group(1) not in _MYSQL_CLIENTS:
            continue
        stop = _COMMAND_END.search(text, tool.end())
        end = stop.start() if stop else len(text)
        out.append(text[done:tool.end()] + _MYSQL_P.sub(f"-p{MASK}", text[tool.end():end]))
        done = end
    return "".join(out) + text[done:]


def mask(text: str, whole: bool = False) -> str:
    """`text` with every secret the rules above find masked. `whole`: the text is one value (a
    URI, one argument), so that a URL's password may hold spaces."""
    if not isinstance(text, str) or _plain(text):
        return text
    if "@" in text and "://" in text:
        text = _url_passwords(text, whole)
    if "-p" in text and ("mysql" in text or "mariadb" in text):
        text = _mysql_passwords(text)
    if ("=" in text or "--" in text) and _secret_word(text):
        if "=" in text:
            text = _ASSIGNMENT.sub(_masked_assignment, text)
        if "--" in text:
            text = _OPTION.sub(_masked_option, text)
    return text


def mask_argv(argv: Sequence[str]) -> List[str]:
    """A command line (argv) with its secrets masked, argument by argument: an option naming a
    secret masks its value (the next argument, or after `=`), and each argument is masked as
    one value (see `mask`)."""
    tool = os.path.basename(argv[0]) if argv else ""
    mysql = tool in _MYSQL_CLIENTS
    out: List[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            hide_next = False
            if not arg.startswith("--"):
                out.append(MASK)
                continue
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if is_secret_key(name):
                if eq:
                    out.append(f"--{name}={MASK}" if value else arg)
                else:
                    hide_next = not mysql  # mysql's --password alone asks for it
                    out.append(arg)
                continue
        if mysql and arg.startswith("-p") and len(arg) > 2:
            out.append(f"-p{MASK}")
            continue
        out.append(mask(arg, whole=True))
    return out


def mask_command(text: str) -> str:
    """A shell-quoted command line (as `env.command` holds it) with its secrets masked."""
    if not isinstance(text, str) or not _could_hold_secret(text):
        return text
    try:
        argv = shlex.split(text)
    except ValueError:  # not shell-quoted after all: masked as free text
        return mask(text)
    masked = mask_argv(argv)
    return text if masked == argv else shlex.join(masked)


def _could_hold_secret(command: str) -> bool:
    """Whether a command line could hold something `mask_argv` masks (a quick test first)."""
    return (("@" in command and "://" in command) or _secret_word(command)
            or (("mysql" in command or "mariadb" in command)
                and os.path.basename(command.split(" ", 1)[0].strip("'\"")) in _MYSQL_CLIENTS))


def mask_value(key: str, value: Any) -> Any:
    """A property's value as it may be recorded and shown: `***` where the key names a secret,
    a command line or text with its secrets masked, a JSON object's values by their keys."""
    if value is None or value is True or value is False:
        return value
    if is_secret_key(key):
        return MASK if value != "" else value
    if type(value) is str:
        if _plain(value) and not (key == COMMAND_KEY and _could_hold_secret(value)):
            return value
        if key == COMMAND_KEY:
            return mask_command(value)
        return mask(value, whole=_SCHEME.match(value) is not None)  # one URL: masked as one value
    if isinstance(value, dict):
        return {k: mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(key, v) for v in value]
    return value


def mask_values(values: Mapping[str, Any]) -> Dict[str, Any]:
    """Properties (or params) as they may be recorded and shown: see `mask_value`."""
    out = dict(values)
    for key, value in values.items():
        # The quick test inline: every record read passes here, a dozen values each. A dict or
        # list is always looked into: its own keys may name secrets whatever its key is.
        if _KNOWN.get(key) is False and not isinstance(value, (dict, list)) and (type(value) is not str or (
                "=" not in value and "--" not in value and "-p" not in value
                and ("@" not in value or "://" not in value))):
            continue
        masked = mask_value(key, value)
        if masked is not value:
            out[key] = masked
    return out
