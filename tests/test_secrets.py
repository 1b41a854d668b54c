"""No password in the store, the bundles, the explorer, the output or the logs (issue 19).

masking.py's rules, one by one; then credentials planted in every place a run can carry
them (its command line, params, properties, metrics, URIs, an error's message, and a store
an older version wrote with them in it), and every output grepped for them: stdout and
stderr of each command, the store's own bytes (SQLite's file and WAL, a dump of the server's
database), bundles and prune's archive, the explorer's pages over HTTP, the report, the
server's log.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Dict, List

import pytest

import mlmd_exercise as mx
from mlmd_exercise import masking
from mlmd_exercise.masking import MASK, is_secret_key, mask, mask_argv, mask_command, mask_values
from mlmd_exercise.records import Kind
from mlmd_exercise.store.address import parse_location
from mlmd_exercise.store.backend import ExecutionWrite, Query
from mlmd_exercise import environment
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

from conftest import new_location, server_admin, server_base, write
from server_logs import server_log_text, statements_logged


# -- the rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    "password", "db_password", "DB_PASSWORD", "passwd", "hf_token", "HF_TOKEN", "token", "access_token",
    "GITHUB_TOKEN", "secret", "client_secret", "AWS_SECRET_ACCESS_KEY", "api_key", "api-key", "apiKey",
    "APIKEY", "access_key", "private_key", "secret_key", "credentials", "db.password", "PGPASSWORD", "MYSQL_PWD",
    "trainer.wandb.api_key", "passphrase"])
def test_keys_that_name_a_secret(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", [
    "max_tokens", "num_tokens", "token_type_ids", "pad_token", "eos_token", "bos_token", "unk_token", "mask_token",
    "max_token", "password_file", "private_key_path", "secret_name", "AWS_ACCESS_KEY_ID", "sort_key", "key",
    "keyword", "monkey", "tokenizer", "passes", "epochs", "env.command", "learning_rate", "pwd_length", "PWD"])
def test_keys_that_do_not(key):
    assert not is_secret_key(key)


@pytest.mark.parametrize("text, masked", [
    ("postgresql://ann:s3cret@db:5432/mlmd", "postgresql://ann:***@db:5432/mlmd"),
    ("mysql://root:p@ss/w#rd?x@db/mlmd?ssl_ca=/c.pem", "mysql://root:***@db/mlmd?ssl_ca=/c.pem"),
    ("see https://u:tok@github.com/x.git and mail a@b.org", "see https://u:***@github.com/x.git and mail a@b.org"),
    ("http://host:8080/path@v2", "http://host:8080/path@v2"),  # a port and a path, no password
    ("s3://bucket/key@2", "s3://bucket/key@2"),
    ("https://x.org/y?token=abc&page=2", "https://x.org/y?token=***&page=2"),
    ("AWS_SECRET_ACCESS_KEY=wJalr python train.py", "AWS_SECRET_ACCESS_KEY=*** python train.py"),
    ("password='a b' rest", "password=*** rest"),
    ("+trainer.api_key=sk-123 lr=0.1", "+trainer.api_key=*** lr=0.1"),
    ("train --password hunter2 --epochs 3", "train --password *** --epochs 3"),
    ("train --api-key=sk-1 --max-tokens 5", "train --api-key=*** --max-tokens 5"),
    ("max_tokens=512 pad_token=[PAD] password_file=/etc/pw", "max_tokens=512 pad_token=[PAD] password_file=/etc/pw"),
    ("mysql -u root -psecret db; ls -pa", "mysql -u root -p*** db; ls -pa"),
    ("postgresql://ann:***@db/mlmd token=***", "postgresql://ann:***@db/mlmd token=***"),  # masked stays as it is
])
def test_text_is_masked_exactly_where_a_rule_says(text, masked):
    assert mask(text) == masked
    assert mask(masked) == masked


def test_one_value_may_hold_spaces_in_its_password():
    assert mask("postgresql://u:pa ss@h/d", whole=True) == "postgresql://u:***@h/d"
    assert mask_values({"db": "postgresql://u:pa ss@h/d"}) == {"db": "postgresql://u:***@h/d"}


def test_a_command_line_is_masked_argument_by_argument():
    argv = ["train.py", "--db", "postgresql://u:p w@h/d", "--password", "x", "--token=y", "--password-file", "f",
            "--sep", "\\t", "HF_TOKEN=z", "--api-key"]
    assert mask_argv(argv) == ["train.py", "--db", "postgresql://u:***@h/d", "--password", MASK, "--token=***",
                               "--password-file", "f", "--sep", "\\t", "HF_TOKEN=***", "--api-key"]
    # The MySQL client asks for --password without =: the next argument is its database.
    assert mask_argv(["mysql", "-psecret", "--password", "db", "--password=s"]) == [
        "mysql", "-p***", "--password", "db", "--password=***"]
    assert mask_command("python t.py --password 'p w' --sep '\\t'") == "python t.py --password '***' --sep '\\t'"


def test_a_secret_inside_a_value_is_masked_when_its_key_was_seen_before():
    """The quick path for keys known to name no secret still looks inside a dict or a list."""
    key = f"nested_{uuid.uuid4().hex[:8]}"
    assert mask_values({key: 1}) == {key: 1}  # now known: names no secret
    assert mask_values({key: {"token": "t"}}) == {key: {"token": MASK}}
    assert mask_values({key: [{"api_key": "k"}]}) == {key: [{"api_key": MASK}]}


def test_values_whose_key_names_a_secret_are_masked_whole():
    values = {"api_key": "sk-1", "hf_token": 12345, "flag": True, "password": "", "max_tokens": 5,
              "note": "password=x", "nested": {"token": "t", "n": 1}, masking.COMMAND_KEY: "a --token T"}
    assert mask_values(values) == {"api_key": MASK, "hf_token": MASK, "flag": True, "password": "", "max_tokens": 5,
                                   "note": "password=***", "nested": {"token": MASK, "n": 1},
                                   masking.COMMAND_KEY: "a --token '***'"}
    assert masking.COMMAND_KEY == environment.COMMAND


# -- addresses: any password works, none is ever shown ---------------------------------------------


ODD_PASSWORDS = ["p#ss", "pa/ss", "pa?ss", "p@ss", "p[ss", "p]ss", "pa:ss", "pa ss", "p%ss", "%41b", "#/?@[]: %",
                 "-p", "p'\"\\s"]


@pytest.mark.parametrize("password", ODD_PASSWORDS)
def test_a_password_with_any_character_is_read_and_never_shown(password):
    for scheme, port in (("postgresql", 5432), ("mysql", 3306)):
        loc = parse_location(f"{scheme}://ann:{password}@db.example.org:{port}/mlmd")
        expected = "Ab" if password == "%41b" else password  # percent-encoded, or as it is
        assert (loc.host, loc.port, loc.user, loc.password, loc.dbname) == (
            "db.example.org", port, "ann", expected, "mlmd")
        assert str(loc) == f"{scheme}://ann:***@db.example.org:{port}/mlmd"


@pytest.mark.parametrize("password", ODD_PASSWORDS)
def test_an_error_about_an_address_never_shows_its_password(run_cli, password):
    marker = f"Z{uuid.uuid4().hex[:6]}"
    for address in (f"postgresql://ann:{password}{marker}@host:99999/db", f"postgresql://ann:{password}{marker}@h",
                    f"mysql://ann:{password}{marker}@host:port/db", f"postgresql://ann:{password}{marker}@[::1/db",
                    f"oracle://ann:{password}{marker}@h/db"):
        result = run_cli("states", "--db", address)
        assert result.code == 2 and result.err.count("\n") == 1, result.err
        assert marker not in result.err and "ann:***@" in result.err, result.err
        assert "Traceback" not in result.err and "ValueError" not in result.err


# -- where a password comes from, so that the command line need not hold it ------------------------


def _without_password(base: str) -> str:
    parts = parse_location(base + "x")
    return f"{parts.scheme}://{parts.user}@{parts.host}:{parts.port}/"


def _password(base: str) -> str:
    return parse_location(base + "x").password


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home directory, and none of the variables that hold a password."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    for name in ("PGPASSWORD", "PGPASSFILE", "MYSQL_PWD", "MLMD_STORE"):
        monkeypatch.delenv(name, raising=False)
    return folder


def test_postgresql_takes_the_password_from_pgpassword_or_the_password_file(home, monkeypatch):
    loc = parse_location("postgresql://ann@db.example.org:6543/mlmd")
    assert loc.password == ""
    pgpass = home / ".pgpass"
    pgpass.write_text("# host:port:database:user:password\nother:*:*:*:no\n"
                      "db.example.org:6543:mlmd:ann:from\\:file\\\\x\n*:*:*:*:fallback\n")
    pgpass.chmod(0o600)
    assert parse_location("postgresql://ann@db.example.org:6543/mlmd").password == "from:file\\x"
    assert parse_location("postgresql://bob@elsewhere/db").password == "fallback"
    pgpass.chmod(0o644)  # others may read it: ignored, as libpq does
    assert parse_location("postgresql://ann@db.example.org:6543/mlmd").password == ""
    own = home / "pass"
    own.write_text("*:*:*:ann:own\n")
    own.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(own))
    assert parse_location("postgresql://ann@db.example.org:6543/mlmd").password == "own"
    monkeypatch.setenv("PGPASSWORD", "env")
    assert parse_location("postgresql://ann@db.example.org:6543/mlmd").password == "env"
    assert parse_location("postgresql://ann:given@db.example.org:6543/mlmd").password == "given"


def test_mysql_takes_the_password_from_its_option_file_or_mysql_pwd(home, monkeypatch):
    assert parse_location("mysql://ann@h/db").password == ""
    monkeypatch.setenv("MYSQL_PWD", "env")
    assert parse_location("mysql://ann@h/db").password == "env"
    cnf = home / ".my.cnf"
    cnf.write_text("[mysql]\npassword=not this one\n[client]\nuser = carl\npassword = \"sp ace\\\\s#x\"  # note\n")
    cnf.chmod(0o600)
    loc = parse_location("mysql://ann@h/db")
    assert (loc.user, loc.password) == ("ann", "sp ace\\s#x")
    assert (parse_location("mysql://h/db").user, parse_location("mysql://h/db").password) == ("carl", "sp ace\\s#x")
    cnf.write_text("[client]\npassword=plain#comment\n")
    assert parse_location("mysql://ann@h/db").password == "plain"
    cnf.chmod(0o666)  # anyone may write it: ignored, as the mysql client does
    assert parse_location("mysql://ann@h/db").password == "env"


def test_the_whole_address_may_come_from_a_file(home, tmp_path, run_cli):
    path = tmp_path / "store.address"
    path.write_text("# the team store\npostgresql://ann:fromfile@db.example.org/mlmd\n")
    loc = parse_location(f"@{path}")
    assert (loc.password, str(loc)) == ("fromfile", "postgresql://ann:***@db.example.org/mlmd")
    result = run_cli("states", "--db", f"@{tmp_path / 'none'}")
    assert (result.code, result.err) == (2, f"mlmd-exercise: error: cannot read the store address from "
                                            f"'@{tmp_path / 'none'}': No such file or directory\n")
    (tmp_path / "empty").write_text("\n# nothing\n")
    assert run_cli("states", "--db", f"@{tmp_path / 'empty'}").err.endswith("holds no store address\n")


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_a_store_opens_with_the_password_from_each_place(server, home, tmp_path, monkeypatch, run_cli):
    base = server_base(server)
    address = new_location(server, tmp_path)
    mx.Tracker(mx.open_store(address, create=True))
    bare = _without_password(base) + parse_location(address).dbname
    password = _password(base)
    assert run_cli("states", "--db", bare).code == 2  # no password anywhere: the server refuses
    if server == "postgresql":
        monkeypatch.setenv("PGPASSWORD", password)
        assert run_cli("states", "--db", bare).code == 0
        monkeypatch.delenv("PGPASSWORD")
        (home / ".pgpass").write_text(f"*:*:*:*:{password.replace(':', chr(92) + ':')}\n")
        (home / ".pgpass").chmod(0o600)
    else:
        monkeypatch.setenv("MYSQL_PWD", password)
        assert run_cli("states", "--db", bare).code == 0
        monkeypatch.delenv("MYSQL_PWD")
        (home / ".my.cnf").write_text(f"[client]\npassword=\"{password}\"\n")
    assert run_cli("states", "--db", bare).code == 0, run_cli("states", "--db", bare).err
    (tmp_path / "address").write_text(address + "\n")
    for name in (".pgpass", ".my.cnf"):
        (home / name).unlink(missing_ok=True)
    assert run_cli("states", "--db", f"@{tmp_path / 'address'}").code == 0


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_a_password_with_odd_characters_works_as_it_is(server, tmp_path):
    base = server_base(server)
    password = "p#ss/w?rd@[x]: y%"
    user = f"odd_{uuid.uuid4().hex[:8]}"
    admin = server_admin(base + "postgres" if server == "postgresql" else base + "mysql")
    if server == "postgresql":
        admin.run(f"CREATE ROLE {user} LOGIN CREATEDB PASSWORD '{password}'")
    else:
        admin.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
        admin.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'")
    admin.close()
    loc = parse_location(base + "x")
    address = f"{loc.scheme}://{user}:{password}@{loc.host}:{loc.port}/o_{uuid.uuid4().hex[:12]}"
    store = mx.open_store(address, create=True)
    assert str(store) == f"{loc.scheme}://{user}:***@{loc.host}:{loc.port}/{parse_location(address).dbname}"
    with mx.Tracker(store).execution():
        pass
    assert store.backend.count_by_state()


# -- planted credentials, and every output grepped for them ----------------------------------------


TRAIN = """
import sys
import mlmd_exercise as mx
tracker = mx.Tracker(sys.argv[1])
data = tracker.dataset(sys.argv[2], properties={{"password": "{secret}-property", "source": "https://u:{secret}-url@h/x"}})
with tracker.execution(inputs={{"examples": data}}, params={{"api_key": "{secret}-param", "C": 1.0,
                       "db": "mysql://u:{secret}-dburl@h/d", "note": "token={secret}-note"}}) as run:
    run.log_metrics({{"accuracy": 0.5}})
    try:  # text is no metric: refused, and the secret is not in the message
        run.log_metrics({{"hf_token": "{secret}-metric"}})
    except mx.MlmdExerciseError as refused:
        print(refused, file=sys.stderr)
    run.log_model(sys.argv[2], name="M")
try:
    with tracker.execution(params={{"C": 2.0}}):
        raise ValueError("could not reach postgresql://ann:{secret}-error@db/x")
except ValueError:
    pass
print(run.id)
"""


def _old_store_secret(store: mx.Store, secret: str) -> None:
    """What a store an older version wrote holds: a command line and a param in clear."""
    tracker = mx.Tracker(store)
    with tracker.execution(params={"C": 3.0}) as run:
        pass
    spec = tracker.catalog.spec(Kind.EXECUTION, "Trainer")
    store.backend.update_executions([ExecutionWrite(
        tracker.catalog.spec_id(spec), "Trainer", id=run.id,
        custom={"env.command": f"python old.py --db postgresql://u:{secret}-oldargv@h/d", "token": f"{secret}-oldtok"})])


def _http_pages(address: str, env: Dict[str, str], paths: List[str]) -> List[str]:
    """The explorer's pages, fetched over HTTP from `ui` in a process of its own."""
    proc = subprocess.Popen([sys.executable, "-m", "mlmd_exercise", "ui", "--db", address, "--no-browser",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    bodies: List[str] = []
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://([^/:]+):(\d+)/([\w-]+)/runs", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        host, port, token = found.group(1), int(found.group(2)), found.group(3)
        for path in paths:
            con = http.client.HTTPConnection(host, port, timeout=60)
            con.request("GET", f"/{token}{path}", headers={"Host": f"{host}:{port}"})
            response = con.getresponse()
            bodies.append(f"{response.status} {response.read().decode('utf-8', 'replace')}")
            con.close()
        return bodies
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        bodies.append(err)


def _store_bytes(address: str) -> str:
    """The store's own bytes: SQLite's file and WAL, or a dump of every table on a server."""
    loc = parse_location(address)
    if loc.is_sqlite:
        return "".join(Path(f"{loc.path}{end}").read_bytes().decode("latin-1") for end in ("", "-wal")
                       if Path(f"{loc.path}{end}").exists())
    admin = server_admin(address)
    try:
        dumped = []
        for table in sorted(admin.tables()):
            quoted = f"`{table}`" if loc.scheme == "mysql" else f'"{table}"'
            dumped += [repr(row) for row in admin.run(f"SELECT * FROM {quoted}")]
        return "\n".join(dumped)
    finally:
        admin.close()


def test_a_planted_password_appears_nowhere(db, tmp_path, run_cli):
    secret = f"PLANTED{uuid.uuid4().hex[:10]}"
    old = f"OLD{uuid.uuid4().hex[:10]}"
    script = write(tmp_path / "train.py", textwrap.dedent(TRAIN.format(secret=secret)))
    data = write(tmp_path / "data.csv", "a\n1\n")
    logged = statements_logged(db) if not parse_location(db).is_sqlite else None
    log = logged.__enter__() if logged is not None else None
    try:
        store = mx.open_store(db, create=True)
        _old_store_secret(store, old)
        record_runs(mx.Tracker(store), [RunSpec(params={"AWS_SECRET_ACCESS_KEY": f"{secret}-bulk"}, inputs={
            "examples": ArtifactSpec(f"s3://AKIA:{secret}-uri@bucket/x", properties={"token": f"{secret}-bprop"})})])
        del store
        gc.collect()
        argv = [sys.executable, str(script), db, str(data), "--db", f"postgresql://ann:{secret}-argv@h/d",
                "--password", f"{secret}-option", f"--api-key={secret}-eq", f"GITHUB_TOKEN={secret}-env"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        run_id = int(done.stdout.split()[-1])
        outputs = [done.stdout, done.stderr]

        store = mx.open_store(db)
        executions = store.backend.executions(Query(order="id", ascending=True))
        ids = [e.id for e in executions]
        artifact_ids = [a.id for a in store.backend.artifacts()]
        recorded = next(e for e in executions if e.id == run_id)
        assert recorded.custom["api_key"] == MASK and recorded.custom["note"] == "token=***"
        assert "--password '***'" in recorded.custom["env.command"]  # shell-quoted, as the whole line is
        assert "postgresql://ann:***@h/d" in recorded.custom["env.command"]
        assert any(e.custom.get("error_message") == "could not reach postgresql://ann:***@db/x" for e in executions)
        del store
        gc.collect()

        for args in (["show", "execution", str(run_id)], ["show", "execution", str(run_id), "--json"],
                     ["show", "execution", str(ids[0]), "--json"],
                     *[["show", "artifact", str(i), "--json"] for i in artifact_ids],
                     ["ls", "executions", "--json"], ["ls", "executions", "--columns", "api_key,token,env.command"],
                     ["ls", "artifacts", "--json"], ["lineage", str(run_id), "--json"], ["diff", str(ids[0]), str(run_id)],
                     ["-v", "states"], ["export", "-o", str(tmp_path / "all.bundle")],
                     ["report", "-o", str(tmp_path / "r.html")], ["report", "-o", str(tmp_path / "r.md")]):
            result = run_cli(*args, "--db", db)
            assert result.code == 0, (args, result.err)
            outputs += [result.out, result.err]
        for path in ("all.bundle", "r.html", "r.md"):
            outputs.append((tmp_path / path).read_text())
        gc.collect()  # prune opens the store with the native backend: no ml-metadata store open here
        result = run_cli("prune", "--older-than", "0d", "--yes", "--archive", str(tmp_path / "pruned.bundle"),
                         "--db", db)
        assert result.code == 0, result.err
        outputs += [result.out, result.err, (tmp_path / "pruned.bundle").read_text()]
        assert run_cli("import", str(tmp_path / "pruned.bundle"), "--db", db).code == 0  # the runs back
        outputs += _http_pages(db, dict(os.environ), ["/runs", f"/execution/{run_id}", f"/execution/{ids[0]}",
                                         f"/compare?kind=execution&a={ids[0]}&b={run_id}",
                                         *[f"/artifact/{i}" for i in artifact_ids],
                                         f"/lineage/execution/{run_id}?direction=both&hops=all", "/states"])
        text = "\n".join(outputs)
        for planted in (secret, old):
            assert planted not in text, text[max(0, text.find(planted) - 300):text.find(planted) + 100]
        assert secret not in _store_bytes(db)  # what this version recorded holds none
        if log is not None:
            log.statements()  # the server has written its log up to now
            assert secret not in server_log_text(parse_location(db).scheme)
    finally:
        if logged is not None:
            logged.__exit__(None, None, None)


def test_ml_metadatas_dump_of_a_refused_write_holds_no_password(tmp_path):
    """ml-metadata prints the whole execution to stderr when a write fails (here a name
    taken: the script makes every run's MLMD name the same): what it prints was masked before
    it was recorded."""
    secret = f"PLANTED{uuid.uuid4().hex[:10]}"
    script = write(tmp_path / "twice.py", textwrap.dedent(f"""
        import sys
        import uuid
        import mlmd_exercise as mx
        same = uuid.uuid4()
        uuid.uuid4 = lambda: same  # the MLMD name a run gets: one for both runs, so the second is refused
        tracker = mx.Tracker(sys.argv[1])
        for _ in range(2):
            try:
                with tracker.execution(name="same", params={{"token": "{secret}"}}):
                    pass
            except mx.MlmdExerciseError as e:
                print("refused:", e)
        """))
    db = tmp_path / "m.db"
    done = subprocess.run([sys.executable, str(script), str(db), "--password", secret], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "MLMD_BACKEND": "mlmd"})
    if "ml-metadata" in done.stderr and "cannot be used" in done.stderr:
        pytest.skip("ml-metadata is not installed here")
    assert "refused:" in done.stdout and "already" in done.stdout, (done.stdout, done.stderr)
    assert secret not in done.stdout + done.stderr


# -- the process list -------------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.parametrize("way", ["PGPASSWORD", ".pgpass", "@file", "MYSQL_PWD", ".my.cnf", "MLMD_STORE"])
def test_ui_runs_for_hours_with_no_password_in_the_process_list(way, tmp_path):
    server = "mysql" if way in ("MYSQL_PWD", ".my.cnf") else "postgresql"
    base = server_base(server)
    address = new_location(server, tmp_path)
    mx.Tracker(mx.open_store(address, create=True))
    password = _password(base)
    bare = _without_password(base) + parse_location(address).dbname
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGPASSFILE", "MYSQL_PWD", "MLMD_STORE")}
    env["HOME"] = str(home)
    given = bare
    if way in ("PGPASSWORD", "MYSQL_PWD"):
        env[way] = password
    elif way == ".pgpass":
        (home / ".pgpass").write_text(f"*:*:*:*:{password}\n")
        (home / ".pgpass").chmod(0o600)
    elif way == ".my.cnf":
        (home / ".my.cnf").write_text(f"[client]\npassword={password}\n")
    elif way == "@file":
        (tmp_path / "address").write_text(address + "\n")
        given = f"@{tmp_path / 'address'}"
    else:
        env["MLMD_STORE"] = address
    args = [sys.executable, "-m", "mlmd_exercise", "ui", "--no-browser", "--port", "0"]
    proc = subprocess.Popen(args + ([] if way == "MLMD_STORE" else ["--db", given]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # printed once the store is open and the server listens
        assert "http://" in line, proc.stderr.read() if proc.poll() is not None else line
        assert password not in _cmdline(proc.pid)
        found = re.search(r"http://([^/:]+):(\d+)/([\w-]+)/runs", line)
        con = http.client.HTTPConnection(found.group(1), int(found.group(2)), timeout=60)
        con.request("GET", f"/{found.group(3)}/runs", headers={"Host": f"{found.group(1)}:{found.group(2)}"})
        assert con.getresponse().status == 200  # the store was opened with that password
        assert password not in _cmdline(proc.pid)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
