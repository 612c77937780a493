"""Opening the database: engine settings per backend and migrations to head."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseError(Exception):
    """The database cannot be used; the message is one line for the user."""


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _engine(url)
            with self.engine.begin() as conn:
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except ArgumentError as e:
            raise DatabaseError(f"bad database URL {url!r}: {e}") from e
        except OperationalError as e:
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            raise DatabaseError(f"cannot open database {_safe(url)}: {reason}") from e
        except ModuleNotFoundError as e:
            raise DatabaseError(f"database driver missing for {_safe(url)}: {e.name}") from e
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time and waits for its lock by sleeping with
        # back-off; taking turns in-process instead keeps 50 concurrent requests fast.
        self._turn = threading.RLock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block (or rolls back)."""
        if self._turn is None:
            with self.sessions.begin() as s:
                yield s
            return
        with self._turn, self.sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()


def _safe(url: str) -> str:
    # Never print a password.
    head, at, tail = url.rpartition("@")
    return f"{head.split('://')[0]}://…@{tail}" if at else url


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a crash of gfsd (what the transaction log needs);
            # only a power cut can lose the last commits. FULL halved volume creates/s.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_size=10, max_overflow=70, pool_pre_ping=True)
    raise ArgumentError("use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB")
