"""The store on real SQLite and real PostgreSQL: migrations, constraints, errors."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from gfs_mgmt.store.db import Database, DatabaseError
from gfs_mgmt.store.models import Base, Brick, Peer, ReplicaSet, Volume
from tests.procs import free_port


def test_migrations_match_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        Database(db_url).close()  # opening again is a no-op upgrade
    finally:
        db.close()


def test_volume_names_are_unique(db_url: str) -> None:
    db = Database(db_url)
    try:
        with db.session() as s:
            s.add(Volume(name="v", replica_count=3))
        with pytest.raises(IntegrityError), db.session() as s:
            s.add(Volume(name="v", replica_count=1))
    finally:
        db.close()


def test_peer_holding_bricks_cannot_go(db_url: str) -> None:
    db = Database(db_url)
    try:
        with db.session() as s:
            p = Peer(node_id="n1", name="p", address="127.0.0.1:1")
            v = Volume(id="vid", name="v", replica_count=1)
            rs = ReplicaSet(index=0, min_in_sync=1)
            v.replica_sets.append(rs)
            s.add_all([p, v])
            s.flush()
            rs.bricks.append(
                Brick(
                    volume_id=v.id, position=0, peer_id=p.id, root="/r", path="/r/b", name="v-r0-b0"
                )
            )
        with pytest.raises(IntegrityError), db.session() as s:
            s.delete(s.get(Peer, p.id))
        with db.session() as s:  # deleting the volume cascades to its sets and bricks
            s.delete(s.get(Volume, "vid"))
        with db.session() as s:
            assert s.query(Brick).count() == 0 and s.query(ReplicaSet).count() == 0
            s.delete(s.get(Peer, p.id))
    finally:
        db.close()


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("mysql://x/y", "bad database URL"),
        (f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nope", "cannot open database"),
        ("sqlite:////nonexistent/dir/x.db", "cannot open database"),
    ],
)
def test_bad_databases_give_one_line(url: str, text: str) -> None:
    with pytest.raises(DatabaseError) as e:
        Database(url)
    assert text in str(e.value) and "\n" not in str(e.value)
