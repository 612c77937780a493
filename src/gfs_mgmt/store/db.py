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
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
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
        except (ArgumentError, ValueError) as e:
            first = str(e).strip().splitlines()[0]
            raise DatabaseError(f"bad database URL {_safe(url)!r}: {first}") from e
        except SQLAlchemyError as e:
            raise DatabaseError(f"cannot open database {_safe(url)}: {reason(e)}") from e
        except CommandError as e:  # e.g. a database migrated by a newer gfs
            raise DatabaseError(
                f"cannot migrate database {_safe(url)}: {e} (made by a newer gfs?)"
            ) from e
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


def reason(e: SQLAlchemyError) -> str:
    """The first line of what the database driver said."""
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip()
    return text.splitlines()[0] if text else type(e).__name__


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
        # An unreachable server fails start-up in seconds, not after TCP's minutes.
        args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": 10}
        return create_engine(
            url, pool_size=10, max_overflow=70, pool_pre_ping=True, connect_args=args
        )
    raise ArgumentError("use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB")
