"""Each database's dialect by its Location.scheme: the table a new engine's dialect joins.

Importing it imports no driver (each dialect imports its own when it connects). The
ml-metadata backend asks it too, for what plain SQL over a store ml-metadata wrote must know
of the database (how text is stored, how a number is bound), and `doctor` for its name.
"""

from __future__ import annotations

from typing import Dict, Type

from mlmd_exercise.store.native.mysql import MysqlDb
from mlmd_exercise.store.native.postgres import PostgresDb
from mlmd_exercise.store.native.sql import Db
from mlmd_exercise.store.native.sqlite import SqliteDb

__all__ = ["DIALECTS"]

DIALECTS: Dict[str, Type[Db]] = {"sqlite": SqliteDb, "postgresql": PostgresDb, "mysql": MysqlDb}
