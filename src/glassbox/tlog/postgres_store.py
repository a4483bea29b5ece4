"""The server store: PostgreSQL through psycopg 3.

Several stateless log servers may share one database: each batch takes a row lock on the tree
head (``SELECT ... FOR UPDATE``), so batches from different processes serialise and each one
sees the size the previous one committed. Readers run in autocommit mode and never hold a
snapshot between requests. Every connection has a ``lock_timeout`` (the store's busy timeout),
so a lock held elsewhere fails a write with a ``StoreError`` of kind ``locked`` instead of
hanging it; a read-only store runs every transaction read-only; a connection the server
dropped is replaced on next use.
"""

from __future__ import annotations

from typing import Any, ClassVar

from glassbox.errors import InputError
from glassbox.tlog.faults import postgres_kind
from glassbox.tlog.store import SQLStore

_ADVISORY_SCHEMA_LOCK = 7365721


class PostgresStore(SQLStore):
    ph = "%s"
    types: ClassVar[dict[str, str]] = {"BIGINT": "BIGINT", "BLOB": "BYTEA"}
    insert_ignore = "INSERT INTO"
    ignore_suffix = " ON CONFLICT DO NOTHING"
    _head_sql = "SELECT size FROM tlog_head WHERE id = 1 FOR UPDATE"

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        read_only: bool = False,
        busy_timeout: float | None = None,
    ) -> None:
        super().__init__(read_only=read_only, busy_timeout=busy_timeout)
        self.dsn = dsn
        self.schema = schema
        self.description = "postgresql (" + (schema or "public") + ")"
        self.where = self.description
        try:
            import psycopg
        except ImportError:
            raise InputError(
                "PostgreSQL support needs psycopg: pip install 'glassbox[postgres]'"
            ) from None
        self._psycopg = psycopg
        self._errors = (psycopg.Error,)
        try:
            if self._needs_schema():
                self._create()
                self._upgrade()
        except psycopg.Error as exc:
            self.close()
            raise self._fault(exc) from exc
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        conn = self._writer()
        with self.write_lock, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_SCHEMA_LOCK,))
            self._create_schema(conn)
        conn.commit()

    def _kind(self, exc: BaseException) -> str:
        return postgres_kind(exc)

    def _broken(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def _connect(self, autocommit: bool = True) -> Any:
        conn = self._psycopg.connect(self.dsn, autocommit=autocommit)
        try:
            if self.schema:
                conn.execute(f'SET search_path TO "{self.schema}"')
            conn.execute(f"SET lock_timeout = {max(1, int(self.busy_timeout * 1000))}")
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
            if not autocommit:
                conn.commit()
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_writer(self) -> Any:
        return self._connect(autocommit=self.read_only)

    def _tables(self, conn: Any) -> set[str]:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = ANY (current_schemas(false))"
        ).fetchall()
        return {str(r[0]) for r in rows}

    def _table_exists(self, conn: Any, name: str) -> bool:
        row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        return row is not None and row[0] is not None

    def _end_read(self, conn: Any) -> None:
        return None
