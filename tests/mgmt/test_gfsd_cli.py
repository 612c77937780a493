"""gfsd's command line: bad input is one line and exit code 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from gfs_mgmt.daemon import token_hash
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Token
from tests.procs import BIN


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--listen", "nope"], "is not HOST:PORT"),
        (["--db", "mysql://x/y"], "bad database URL"),
        (["--peer-check-interval", "0"], "--peer-check-interval"),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], text: str) -> None:
    r = subprocess.run(
        [str(BIN / "gfsd"), "--state-dir", str(tmp_path / "s"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and text in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_busy_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            [
                str(BIN / "gfsd"),
                "--state-dir",
                str(tmp_path / "s"),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2 and "cannot listen on" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_foreign_token_file_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir(mode=0o700)
    (state / "admin.token").write_text("not-this-cluster\n")
    url = f"sqlite:///{tmp_path / 'other.db'}"
    db = Database(url)
    with db.session() as s:  # the database already belongs to a cluster with another token
        s.add(Token(name="admin", hash=token_hash("the-real-one")))
    db.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = subprocess.run(
        [
            str(BIN / "gfsd"),
            "--state-dir",
            str(state),
            "--db",
            url,
            "--listen",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "does not hold this cluster's admin token" in r.stderr
