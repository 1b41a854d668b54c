"""The native backend: MLMD's schema 10 in pure Python, on SQLite, PostgreSQL and MySQL.

`backend.py` (NativeBackend: `reads.py` and the writes), `rows.py` (MLMD's rows as records, a
Query as SQL), `schema.py` (making MLMD's schema), `errors.py` (database errors -> the
package's), and one dialect per engine, each a `sql.Db`: `sqlite.py`, `postgres.py`,
`mysql.py` (its connection, DDL, error codes, quirks and tuning). Nothing is imported here.
"""
