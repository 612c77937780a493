"""A throwaway real PostgreSQL for tests: Debian's binaries, a cluster in a temp
folder owned by `postgres` (pg_ctl refuses root), loopback only, trust auth."""

from __future__ import annotations

import glob
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.procs import free_port, wait_for


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(
            "PostgreSQL binaries not found (/usr/lib/postgresql/*/bin); "
            "install Debian's postgresql package (scripts/install.sh --test does)"
        )
    return found[-1]


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=60
    )


class PgServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gfs-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.started = False

    def start(self) -> PgServer:
        shutil.chown(self.dir, "postgres", "postgres")
        r = _as_postgres(
            _bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        if r.returncode:
            raise RuntimeError(f"initdb failed: {r.stderr}")
        opts = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} -c fsync=off -c max_connections=300"
        r = _as_postgres(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-o",
            opts,
            "-w",
            "start",
        )
        if r.returncode:
            raise RuntimeError(f"pg_ctl start failed: {r.stderr} {r.stdout}")
        self.started = True
        wait_for(self._ready, 30, "PostgreSQL accepting connections")
        return self

    def _ready(self) -> bool:
        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def dsn(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_db(self, name: str) -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.started:
            _as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)
