"""The store on real SQLite and real PostgreSQL: migrations, constraints, errors."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError

from gfs_mgmt.store.db import Database, DatabaseError, alembic_config
from gfs_mgmt.store.models import Base, Brick, Event, Peer, ReplicaSet, Volume, VolumeOption
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


def test_values_of_withdrawn_options_are_dropped(db_url: str) -> None:
    """A database from before auth.allow and heal.throttle-mbps were withdrawn: the
    upgrade deletes their stored values (they never had an effect) and says so."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(
            text("INSERT INTO volumes (id, name, replica_count, size_bytes, template, state,"
                 " version, created) VALUES ('vid', 'v', 3, NULL, NULL, 'stopped', 1, :t)"),
            {"t": "2026-12-01 00:00:00"},
        )  # fmt: skip
        for key, value in [
            ("auth.allow", "10.*"),
            ("heal.throttle-mbps", "50"),
            ("client.writeback", "on"),
        ]:
            conn.execute(
                text("INSERT INTO volume_options (volume_id, key, value) VALUES ('vid', :k, :v)"),
                {"k": key, "v": value},
            )
    engine.dispose()
    db = Database(db_url)  # migrates to head
    try:
        with db.session() as s:
            assert {o.key: o.value for o in s.scalars(select(VolumeOption))} == {
                "client.writeback": "on"
            }
            ev = s.scalars(select(Event).where(Event.kind == "volume_options_withdrawn")).one()
            assert ev.volume == "v" and "auth.allow, heal.throttle-mbps" in ev.message
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
