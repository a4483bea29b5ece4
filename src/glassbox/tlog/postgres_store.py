"""The server store: PostgreSQL through psycopg 3.

Several stateless log servers may share one database: each batch takes a row lock on the tree
head (``SELECT ... FOR UPDATE``), so batches from different processes serialise and each one
sees the size the previous one committed. Readers run in autocommit mode and never hold a
snapshot between requests.
"""

from __future__ import annotations

from typing import Any, ClassVar

from glassbox.errors import InputError
from glassbox.tlog.store import SQLStore


class PostgresStore(SQLStore):
    ph = "%s"
    types: ClassVar[dict[str, str]] = {"BIGINT": "BIGINT", "BLOB": "BYTEA"}
    insert_ignore = "INSERT INTO"
    ignore_suffix = " ON CONFLICT DO NOTHING"

    def __init__(self, dsn: str, *, schema: str | None = None) -> None:
        super().__init__()
        self.dsn = dsn
        self.schema = schema
        self.description = "postgresql (" + (schema or "public") + ")"
        try:
            import psycopg

            self._psycopg = psycopg
            self._wconn = self._connect(autocommit=False)
            with self._wconn.transaction():
                self._wconn.execute("SELECT pg_advisory_xact_lock(7365721)")
                self._create_schema(self._wconn)
            self._wconn.commit()
            self._upgrade()
        except ImportError:
            raise InputError(
                "PostgreSQL support needs psycopg: pip install 'glassbox[postgres]'"
            ) from None
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise InputError(f"cannot open PostgreSQL log store: {exc}") from None
            raise

    def _connect(self, autocommit: bool = True) -> Any:
        conn = self._psycopg.connect(self.dsn, autocommit=autocommit)
        if self.schema:
            conn.execute(f'SET search_path TO "{self.schema}"')
            if not autocommit:
                conn.commit()
        return conn

    def _table_exists(self, conn: Any, name: str) -> bool:
        row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        return row is not None and row[0] is not None

    def begin_append(self) -> int:
        rows = self._wexec("SELECT size FROM tlog_head WHERE id = 1 FOR UPDATE")
        return int(rows[0][0])

    def _end_read(self, conn: Any) -> None:
        return None
