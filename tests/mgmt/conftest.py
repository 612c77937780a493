from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mgmt.pgserver import PgServer


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gfsd.db'}"
    server: PgServer = request.getfixturevalue("pg")
    return server.create_db(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def pg_url(pg: PgServer) -> str:
    """A fresh empty PostgreSQL database (for what only PostgreSQL promises, such as
    several gfsd sharing one database)."""
    return pg.create_db(f"t_{uuid.uuid4().hex[:12]}")
