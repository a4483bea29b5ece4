"""Fixtures: every store test runs against SQLite and (when a server is given) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from glassbox.tlog.store import SQLStore, open_store

PG_DSN = os.environ.get("GLASSBOX_TEST_POSTGRES_DSN")
needs_pg = pytest.mark.skipif(
    not PG_DSN,
    reason="GLASSBOX_TEST_POSTGRES_DSN is not set (start a server: scripts/pg-test-server start)",
)


def fresh_pg_schema() -> str:
    """Create an empty schema for one test and return its name."""
    import psycopg

    assert PG_DSN
    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return name


def drop_pg_schema(name: str) -> None:
    import psycopg

    assert PG_DSN
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def pg_url(schema: str) -> str:
    """A DSN that selects the schema (what a CLI user or subprocess would pass)."""
    assert PG_DSN
    return f"{PG_DSN} options='-c search_path={schema}'"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[needs_pg, pytest.mark.postgres])])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
        return
    schema = fresh_pg_schema()
    try:
        yield pg_url(schema)
    finally:
        drop_pg_schema(schema)


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
