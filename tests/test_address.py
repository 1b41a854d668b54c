"""address.py: store addresses parsed with urllib, passwords never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmd_exercise.store.address import default_location, parse_location
from mlmd_exercise.errors import StoreError


@pytest.mark.parametrize("text, path", [
    ("metadata.db", "metadata.db"),
    ("runs/m.db", "runs/m.db"),
    ("/abs/m.db", "/abs/m.db"),
    ("sqlite:///relative/m.db", "relative/m.db"),
    ("sqlite:////absolute/m.db", "/absolute/m.db"),
    ("sqlite:///with%20space.db", "with space.db"),
])
def test_sqlite_addresses(text, path):
    loc = parse_location(text)
    assert (loc.scheme, loc.path, loc.is_sqlite) == ("sqlite", Path(path), True)
    assert str(loc) == text


@pytest.mark.parametrize("text, expected, shown", [
    ("postgresql://ann:s3cret@db.example.org:6543/mlmd",
     ("db.example.org", 6543, "ann", "s3cret", "mlmd", ""), "postgresql://ann:***@db.example.org:6543/mlmd"),
    ("postgres://ann@localhost/mlmd?sslmode=require",
     ("localhost", 5432, "ann", "", "mlmd", "require"), "postgres://ann@localhost/mlmd?sslmode=require"),
    ("postgresql://ann:p%40ss%3Aword@127.0.0.1/db",
     ("127.0.0.1", 5432, "ann", "p@ss:word", "db", ""), "postgresql://ann:***@127.0.0.1/db"),
])
def test_postgresql_addresses(text, expected, shown):
    loc = parse_location(text)
    assert (loc.host, loc.port, loc.user, loc.password, loc.dbname, loc.sslmode) == expected
    assert str(loc) == shown and not loc.is_sqlite
    assert loc.password == "" or loc.password not in repr(loc)


@pytest.mark.parametrize("text, expected, shown", [
    ("mysql://ann:s3cret@db.example.org:3307/mlmd",
     ("db.example.org", 3307, "ann", "s3cret", "mlmd", "", ()), "mysql://ann:***@db.example.org:3307/mlmd"),
    ("mysql://ann:p%40ss%3Aword@127.0.0.1/db",
     ("127.0.0.1", 3306, "ann", "p@ss:word", "db", "", ()), "mysql://ann:***@127.0.0.1/db"),
    ("mysql://root@/kubeflow?unix_socket=/run/mysqld/mysqld.sock",
     ("localhost", 3306, "root", "", "kubeflow", "/run/mysqld/mysqld.sock", ()),
     "mysql://root@/kubeflow?unix_socket=/run/mysqld/mysqld.sock"),
    ("mysql://ann:pw@h/db?ssl_verify_server_cert=YES&ssl_ca=/etc/ca.pem&ssl_cipher=AES256-SHA",
     ("h", 3306, "ann", "pw", "db", "",
      (("ssl_ca", "/etc/ca.pem"), ("ssl_cipher", "AES256-SHA"), ("ssl_verify_server_cert", "true"))),
     "mysql://ann:***@h/db?ssl_verify_server_cert=YES&ssl_ca=/etc/ca.pem&ssl_cipher=AES256-SHA"),
])
def test_mysql_addresses(text, expected, shown):
    loc = parse_location(text)
    assert loc.scheme == "mysql"
    assert (loc.host, loc.port, loc.user, loc.password, loc.dbname, loc.socket, loc.ssl) == expected
    assert str(loc) == shown and not loc.is_sqlite
    assert loc.password == "" or loc.password not in repr(loc)


def test_the_default_is_mlmd_store_else_metadata_db(monkeypatch):
    monkeypatch.delenv("MLMD_STORE", raising=False)
    assert default_location() == "metadata.db"
    monkeypatch.setenv("MLMD_STORE", "postgresql://u@h/db")
    assert default_location() == "postgresql://u@h/db"


def test_errors_mask_the_password():
    with pytest.raises(StoreError) as e:
        parse_location("postgresql://ann:s3cret@host:99999/db")
    assert "s3cret" not in str(e.value) and "ann:***@host:99999" in str(e.value)


def test_the_default_is_mlmd_store_else_metadata_db_in_the_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("MLMD_STORE", raising=False)
    assert default_location() == "metadata.db"
    assert default_location(tmp_path / "w") == str(tmp_path / "w" / "metadata.db")
    monkeypatch.setenv("MLMD_STORE", "postgresql://u@h/db")
    assert default_location() == default_location(tmp_path) == "postgresql://u@h/db"


def test_a_parsed_location_goes_wherever_an_address_does():
    loc = parse_location("postgresql://ann:s3cret@h/mlmd")
    assert parse_location(loc) is loc
