"""`gfsd`: the management daemon (REST API, cluster state in SQL, transactions).

    gfsd --listen 127.0.0.1:24100 --state-dir /var/lib/gfs [--db postgresql+psycopg://…]
    gfsd --config /etc/gfs/gfsd.toml

The config file (TOML) takes the same settings; a flag given on the command line wins:

    listen = "0.0.0.0:24100"
    state_dir = "/var/lib/gfs"
    db = "postgresql+psycopg://gfs:secret@db1:5432/gfs"
    peer_check_interval = 5.0
    log_file = "/var/log/gfs/gfsd.log"
    log_level = "info"
    tls_dir = "/etc/gfs/tls"     # identity for the bricks (`gfs certs issue --role admin`)
    ca_dir = "/etc/gfs/ca"       # signs `gfs volume credential create` (gfs certs init)

At first start it creates the admin bearer token and writes it to
`<state-dir>/admin.token` (mode 0600); only its hash is kept in the database.
It listens first, then applies migrations and recovers unfinished transactions, then
serves: a request made meanwhile waits for that instead of being refused.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import secrets
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from gfs import certs, tracing
from gfs.rpc import tls
from gfs.rpc.channel import parse_address
from gfs.tunables import reexec_with_malloc_tunables
from gfs_mgmt.api import routes
from gfs_mgmt.api.app import create_app
from gfs_mgmt.api.tracing import instrument
from gfs_mgmt.metrics import add_route, build_registry
from gfs_mgmt.peer.monitor import PeerMonitor
from gfs_mgmt.store.db import Database, DatabaseError, reason
from gfs_mgmt.store.models import Token
from gfs_mgmt.volume.service import Manager
from gfs_mgmt.volume.webhooks import WebhookDispatcher

log = logging.getLogger("gfs.gfsd")
LEVELS = ("debug", "info", "warning", "error")
#: Connections the kernel queues for gfsd (uvicorn's default).
BACKLOG = 2048


class UsageError(Exception):
    pass


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_token(db: Database, state_dir: Path) -> str:
    """The admin token: read from the state dir, or created (file and hash) at first start."""
    try:
        return _ensure_token(db, state_dir / "admin.token")
    except OSError as e:
        raise UsageError(f"{e.filename or state_dir / 'admin.token'}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"{state_dir / 'admin.token'}: not a token file ({e.reason})") from e


def _ensure_token(db: Database, path: Path) -> str:
    with db.session() as s:
        row = s.scalar(select(Token).where(Token.name == "admin"))
        if path.exists():
            token = path.read_text().strip()
            if row is None:
                s.add(Token(name="admin", hash=token_hash(token)))
            elif row.hash != token_hash(token):
                raise UsageError(f"{path} does not hold this cluster's admin token")
            return token
        if row is not None:
            raise UsageError(f"the database has an admin token but {path} is missing")
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        s.add(Token(name="admin", hash=token_hash(token)))
        log.info("created admin token file=%s", path)
        return token


DEFAULTS: dict[str, Any] = {
    "listen": "127.0.0.1:24100",
    "state_dir": Path("/var/lib/gfs"),
    "db": None,
    "peer_check_interval": 5.0,
    "log_file": None,
    "log_level": "info",
    "advertise": None,
    "otlp_endpoint": None,
    "tls_dir": None,
    "ca_dir": None,
}


def load_config(path: Path) -> dict[str, Any]:
    """The settings of a TOML config file, type-checked; unknown keys are refused."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"config {path}: {e.strerror}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"config {path}: {e}") from e
    unknown = set(data) - set(DEFAULTS)
    if unknown:
        raise UsageError(f"config {path}: unknown setting(s) {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "peer_check_interval":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise UsageError(f"config {path}: {key} must be a number of seconds")
            out[key] = float(value)
        elif not isinstance(value, str):
            raise UsageError(f"config {path}: {key} must be a string")
        else:
            out[key] = Path(value) if key == "state_dir" else value
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="gfsd", description="gfs management daemon")
    ap.add_argument("--config", type=Path, metavar="FILE", help="TOML config file")
    ap.add_argument("--listen", help="HOST:PORT of the REST API (default 127.0.0.1:24100)")
    ap.add_argument("--state-dir", type=Path, help="default /var/lib/gfs")
    ap.add_argument(
        "--advertise",
        metavar="HOST:PORT",
        help="REST address bricks use to reach this gfsd (default: --listen)",
    )
    ap.add_argument("--db", help="database URL (default: sqlite in the state dir)")
    ap.add_argument(
        "--peer-check-interval",
        type=float,
        metavar="SECONDS",
        help="how often peers are checked for liveness (default 5)",
    )
    ap.add_argument("--log-file")
    ap.add_argument("--log-level", choices=LEVELS)
    ap.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="send traces over OTLP/HTTP (default: env OTEL_EXPORTER_OTLP_ENDPOINT; else off)",
    )
    ap.add_argument(
        "--tls-dir",
        metavar="DIR",
        help="identity gfsd presents to brick daemons (ca.crt, tls.crt, tls.key of an admin "
        "certificate); without it gfsd can only manage --insecure bricks",
    )
    ap.add_argument(
        "--ca-dir",
        metavar="DIR",
        help="the cluster CA (ca.crt, ca.key of gfs certs init): gfsd signs the client "
        "certificates of `gfs volume credential create` with it",
    )
    ns = ap.parse_args(argv)
    settings = dict(DEFAULTS)
    if ns.config:
        settings.update(load_config(ns.config))
    for key in DEFAULTS:  # flags beat the file
        if getattr(ns, key) is not None:
            settings[key] = getattr(ns, key)
    for key, value in settings.items():
        setattr(ns, key, value)
    try:
        parse_address(ns.listen)
    except ValueError as e:
        raise UsageError(f"--listen: {e}") from e
    if ns.advertise:
        try:
            parse_address(ns.advertise)
        except ValueError as e:
            raise UsageError(f"--advertise: {e}") from e
    if not 0.1 <= ns.peer_check_interval <= 3600:
        raise UsageError("--peer-check-interval must be between 0.1 and 3600 seconds")
    if ns.log_level not in LEVELS:
        raise UsageError(f"log level {ns.log_level!r}: use one of {', '.join(LEVELS)}")
    if ns.ca_dir:
        ns.ca_dir = Path(ns.ca_dir)
        for f in (certs.CA_CERT, certs.CA_KEY):
            if not (ns.ca_dir / f).is_file():
                raise UsageError(f"--ca-dir {ns.ca_dir}: no {f} (make it with gfs certs init)")
        if (ns.ca_dir / certs.CA_KEY).stat().st_mode & 0o077:
            raise UsageError(f"--ca-dir {ns.ca_dir}: {certs.CA_KEY} is readable by others")
    ns.tls = None
    if ns.tls_dir:
        try:
            ns.tls = tls.load_dir(ns.tls_dir)
        except tls.CertError as e:
            raise UsageError(str(e)) from e
        if ns.tls.identity.role != "admin":
            raise UsageError(
                f"{ns.tls_dir}: certificate role is {ns.tls.identity.role}, gfsd needs an "
                "admin certificate"
            )
    return ns


def main(argv: list[str] | None = None) -> None:
    reexec_with_malloc_tunables()
    try:
        ns = parse_args(sys.argv[1:] if argv is None else argv)
        handler: logging.Handler = (
            logging.FileHandler(ns.log_file) if ns.log_file else logging.StreamHandler()
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(ns.log_level.upper())
        try:
            ns.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise UsageError(f"state dir {ns.state_dir}: {e.strerror}") from e
        host, port = parse_address(ns.listen)
        # Listen before anything else: a busy port is one clear line, not a late failure,
        # and a client that connects while migrations and recovery run is answered when
        # they are done instead of refused (the kernel queues it). /v1/health answers
        # once gfsd serves.
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(BACKLOG)
        except OSError as e:
            raise UsageError(f"cannot listen on {ns.listen}: {e.strerror}") from e
        logging.getLogger("alembic").setLevel(logging.WARNING)
        if ns.tls is not None:
            tls.use(ns.tls)  # every channel to a brick daemon is mutual TLS
        tracing.setup("gfsd", ns.otlp_endpoint)
        url = ns.db or f"sqlite:///{ns.state_dir.resolve() / 'gfsd.db'}"
        db = Database(url)
        token = ensure_token(db, ns.state_dir)
        mgr = Manager(db)
        mgr.membership.token = token
        mgr.membership.advertise = [ns.advertise or ns.listen]
        mgr.credentials.ca_dir = ns.ca_dir
        recovered = mgr.engine.recover()
        if recovered:
            log.info("recovered transactions count=%d", recovered)
        monitor = PeerMonitor(db, ns.peer_check_interval)
        monitor.start()
        WebhookDispatcher(db).start()
        app = create_app(token, [routes.build(mgr)], mgr.credentials.volumes_of_token)
        add_route(app, build_registry(db))
        instrument(app)
        if ns.tls is None:
            log.warning("no tls_dir: gfsd reaches brick daemons in plaintext (--insecure only)")
        log.info(
            "serving listen=%s db=%s tls=%s pid=%d",
            ns.listen,
            db.dialect,
            "on" if ns.tls else "off",
            os.getpid(),
        )
        uvicorn.run(app, fd=sock.fileno(), backlog=BACKLOG, log_level="warning", access_log=False)
    except (UsageError, DatabaseError, tracing.TracingError) as e:
        print(f"gfsd: {e}", file=sys.stderr)
        sys.exit(2)
    except SQLAlchemyError as e:  # the database failed after it was opened
        print(f"gfsd: database: {reason(e)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
