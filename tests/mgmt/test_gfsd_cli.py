"""gfsd's command line: bad input is one line and exit code 2, never a traceback."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from gfs_mgmt.daemon import parse_args, token_hash
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Token
from tests.procs import BIN, free_port


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--listen", "nope"], "is not HOST:PORT"),
        (["--db", "mysql://x/y"], "bad database URL"),
        (["--db", "postgresql+psycopg://gfs@[::1/gfs"], "bad database URL"),
        (
            ["--db", f"postgresql+psycopg://gfs:secret@127.0.0.1:{free_port()}/gfs"],
            "Connection refused",
        ),
        (["--db", "sqlite:////nonexistent/dir/gfsd.db"], "cannot open database"),
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
    assert len(r.stderr.strip().splitlines()) == 1 and "secret" not in r.stderr  # no password


def test_database_of_a_newer_gfs_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    Database(url).close()
    with sqlite3.connect(tmp_path / "newer.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0999'")
    r = subprocess.run(
        [str(BIN / "gfsd"), "--state-dir", str(tmp_path / "s"), "--db", url, "--listen",
         f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "newer gfs" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_config_file_and_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "gfsd.toml"
    cfg.write_text(
        'listen = "127.0.0.1:24999"\nstate_dir = "/srv/s"\ndb = "sqlite:////srv/x.db"\n'
        'peer_check_interval = 2\nlog_level = "debug"\n'
    )
    ns = parse_args(["--config", str(cfg)])
    assert (ns.listen, ns.state_dir, ns.db) == (
        "127.0.0.1:24999",
        Path("/srv/s"),
        "sqlite:////srv/x.db",
    )
    assert (ns.peer_check_interval, ns.log_level, ns.log_file) == (2.0, "debug", None)
    ns = parse_args(["--config", str(cfg), "--listen", "127.0.0.1:1", "--log-level", "error"])
    assert (ns.listen, ns.log_level, ns.state_dir) == ("127.0.0.1:1", "error", Path("/srv/s"))
    assert parse_args([]).listen == "127.0.0.1:24100"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('listen = "x"', "is not HOST:PORT"),
        ("colour = 1", "unknown setting(s) colour"),
        ("state_dir = 3", "state_dir must be a string"),
        ('peer_check_interval = "5"', "must be a number"),
        ('log_level = "loud"', "log level"),
        ("listen = ", "config "),
    ],
)
def test_bad_config_file(tmp_path: Path, text: str, error: str) -> None:
    cfg = tmp_path / "gfsd.toml"
    cfg.write_text(text + "\n")
    r = subprocess.run(
        [str(BIN / "gfsd"), "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and error in r.stderr and "Traceback" not in r.stderr, r.stderr
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
