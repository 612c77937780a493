"""`gfs-brickd`: one process serving every brick of a node over one gRPC port.

    gfs-brickd --listen 127.0.0.1:24007 --brick b0=/srv/b0 --brick b1=/srv/b1
    gfs-brickd --listen 0.0.0.0:24007 --root /srv/gfs --zone rack1   (bricks made by gfsd)
    gfs-brickd --config /etc/gfs/brickd.toml

Every call is mutual TLS with the node identity in --tls-dir (made by `gfs certs issue
--role node`); plaintext only with an explicit --insecure.

The config file (TOML) takes the same settings:

    listen = "0.0.0.0:24007"
    log_file = "/var/log/gfs/brickd.log"
    log_level = "info"
    workers = 32
    roots = ["/srv/gfs"]
    zone = "rack1"
    metrics_listen = "0.0.0.0:9713"   # Prometheus /metrics (off when not set)
    tls_dir = "/etc/gfs/tls"          # ca.crt, tls.crt, tls.key (role node)
    insecure = false                  # true: plaintext, no authorization (warned at start)
    [bricks]
    b0 = "/srv/b0"
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, ProcessCollector

from gfs import tracing
from gfs.brick import metrics
from gfs.brick.admin import AdminService
from gfs.brick.authz import Authorizer, BrickVolumes
from gfs.brick.heal import HealWorker
from gfs.brick.replica import LeaseWorker
from gfs.brick.service import BrickService, umask_zero
from gfs.brick.store import Brick
from gfs.proto import admin_pb2_grpc, brick_pb2_grpc
from gfs.rpc import tls
from gfs.rpc.channel import SERVER_OPTIONS, parse_address
from gfs.rpc.tls import CertError, Material
from gfs.rpc.tls import load_dir as load_tls
from gfs.rpc.tracing import ServerTracer
from gfs.tunables import reexec_with_malloc_tunables

log = logging.getLogger("gfs.brickd")

LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """Bad settings: reported as one line, exit code 2."""


@dataclass
class Config:
    listen: str = ""
    bricks: dict[str, Path] = field(default_factory=dict)
    log_file: str | None = None
    log_level: str = "info"
    workers: int = 32
    roots: list[Path] = field(default_factory=list)
    zone: str = ""
    metrics_listen: str = ""
    otlp_endpoint: str | None = None
    tls_dir: Path | None = None
    insecure: bool = False
    tls: Material | None = None


def parse_brick(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise ConfigError(f"--brick {text!r}: expected NAME=PATH")
    if "/" in name or len(name) > 128 or not name.isprintable():
        raise ConfigError(f"--brick {text!r}: brick name must be printable, without '/'")
    return name, Path(path)


def load_config(path: Path) -> Config:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"config {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config {path}: {e}") from e
    known = {"listen", "bricks", "log_file", "log_level", "workers", "roots", "zone"}
    known |= {"metrics_listen", "tls_dir", "insecure"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"config {path}: unknown setting(s) {', '.join(sorted(unknown))}")
    cfg = Config()
    for key in ("listen", "log_file", "log_level", "zone", "metrics_listen"):
        if key in data:
            if not isinstance(data[key], str):
                raise ConfigError(f"config {path}: {key} must be a string")
            setattr(cfg, key, data[key])
    if "tls_dir" in data:
        if not isinstance(data["tls_dir"], str):
            raise ConfigError(f"config {path}: tls_dir must be a string")
        cfg.tls_dir = Path(data["tls_dir"])
    if "insecure" in data:
        if not isinstance(data["insecure"], bool):
            raise ConfigError(f"config {path}: insecure must be true or false")
        cfg.insecure = data["insecure"]
    if "workers" in data:
        if not isinstance(data["workers"], int) or isinstance(data["workers"], bool):
            raise ConfigError(f"config {path}: workers must be an integer")
        cfg.workers = data["workers"]
    roots = data.get("roots", [])
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise ConfigError(f"config {path}: roots must be a list of paths")
    cfg.roots = [Path(r) for r in roots]
    bricks = data.get("bricks", {})
    if not isinstance(bricks, dict) or not all(isinstance(v, str) for v in bricks.values()):
        raise ConfigError(f"config {path}: [bricks] must map names to paths")
    for name, p in bricks.items():
        cfg.bricks.update([parse_brick(f"{name}={p}")])
    return cfg


def parse_args(argv: list[str]) -> Config:
    ap = argparse.ArgumentParser(prog="gfs-brickd", description="Serve gfs bricks over gRPC.")
    ap.add_argument("--listen", help="HOST:PORT to serve on")
    ap.add_argument("--brick", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument(
        "--root",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="folder under which gfsd may create bricks (repeatable)",
    )
    ap.add_argument("--zone", help="failure zone of this node (rack, room...)")
    ap.add_argument("--config", type=Path, help="TOML config file")
    ap.add_argument("--log-file")
    ap.add_argument("--log-level", choices=LEVELS)
    ap.add_argument("--workers", type=int, help="RPC worker threads (default 32)")
    ap.add_argument(
        "--metrics-listen", metavar="HOST:PORT", help="serve Prometheus /metrics (off by default)"
    )
    ap.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="send traces over OTLP/HTTP (default: env OTEL_EXPORTER_OTLP_ENDPOINT; else off)",
    )
    ap.add_argument(
        "--tls-dir",
        type=Path,
        metavar="DIR",
        help="this node's identity (ca.crt, tls.crt, tls.key from `gfs certs issue --role node`)",
    )
    ap.add_argument(
        "--insecure",
        action="store_true",
        help="serve plaintext gRPC with no authorization (anyone on the network is admin)",
    )
    ns = ap.parse_args(argv)
    cfg = load_config(ns.config) if ns.config else Config()
    if ns.listen:
        cfg.listen = ns.listen
    for text in ns.brick:
        name, path = parse_brick(text)
        if name in cfg.bricks:
            raise ConfigError(f"brick {name!r} given twice")
        cfg.bricks[name] = path
    cfg.roots += ns.root
    if ns.zone is not None:
        cfg.zone = ns.zone
    if ns.log_file:
        cfg.log_file = ns.log_file
    if ns.log_level:
        cfg.log_level = ns.log_level
    if ns.workers is not None:
        cfg.workers = ns.workers
    if ns.metrics_listen:
        cfg.metrics_listen = ns.metrics_listen
    cfg.otlp_endpoint = ns.otlp_endpoint
    if ns.tls_dir:
        cfg.tls_dir = ns.tls_dir
    cfg.insecure = cfg.insecure or ns.insecure
    if not cfg.listen:
        raise ConfigError("no address to serve on: give --listen HOST:PORT or listen in --config")
    try:
        parse_address(cfg.listen)
    except ValueError as e:
        raise ConfigError(f"--listen: {e}") from e
    if cfg.metrics_listen:
        try:
            parse_address(cfg.metrics_listen)
        except ValueError as e:
            raise ConfigError(f"--metrics-listen: {e}") from e
    if not cfg.bricks and not cfg.roots:
        raise ConfigError(
            "no bricks: give --brick NAME=PATH, or --root PATH for bricks made by gfsd"
        )
    for root in cfg.roots:
        if not root.is_absolute() or not root.is_dir():
            raise ConfigError(f"root {root} is not an existing absolute folder")
    if not cfg.zone.isprintable() or len(cfg.zone) > 64:
        raise ConfigError("zone must be printable, at most 64 characters")
    if cfg.log_level not in LEVELS:
        raise ConfigError(f"log level {cfg.log_level!r}: use one of {', '.join(LEVELS)}")
    if not 1 <= cfg.workers <= 1024:
        raise ConfigError("workers must be between 1 and 1024")
    for name, path in cfg.bricks.items():
        if not path.is_dir():
            raise ConfigError(f"brick {name}: {path} is not a directory")
    if cfg.insecure and cfg.tls_dir:
        raise ConfigError("give either --tls-dir or --insecure, not both")
    if not cfg.insecure:
        if cfg.tls_dir is None:
            raise ConfigError(
                "no TLS identity: give --tls-dir DIR (made by `gfs certs issue --role node`), "
                "or --insecure to serve plaintext"
            )
        try:
            cfg.tls = load_tls(cfg.tls_dir)
        except CertError as e:
            raise ConfigError(str(e)) from e
        if cfg.tls.identity.role != "node":
            raise ConfigError(
                f"{cfg.tls_dir}: certificate role is {cfg.tls.identity.role}, a brick daemon "
                "needs a node certificate"
            )
    return cfg


def setup_logging(cfg: Config) -> None:
    handler: logging.Handler
    if cfg.log_file:
        # Created before the umask is 0, yet say the mode: never a world-writable log.
        os.close(os.open(cfg.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640))
    handler = logging.FileHandler(cfg.log_file) if cfg.log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(cfg.log_level.upper())


def raise_fd_limit() -> None:
    # Each served brick holds a few fds (root, index, cached directories): with thousands
    # of volumes per node the default soft limit of 1024 is far too low.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(cfg: Config) -> None:
    umask_zero()
    raise_fd_limit()
    bricks: dict[str, Brick] = {}
    for name, path in cfg.bricks.items():
        try:
            bricks[name] = Brick(name, path.resolve())
        except OSError as e:
            raise ConfigError(f"brick {name}: {path}: {e.strerror}") from e
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    service = BrickService(bricks)
    # The tracer outermost: it wraps per call, the metrics' wrappers are cached; the
    # authorizer innermost, so refused calls are traced and counted too.
    interceptors: list[grpc.ServerInterceptor] = [ServerTracer(), metrics.RpcMetrics(registry)]
    admin = AdminService(service, cfg.roots, cfg.zone)
    if cfg.tls is not None:
        tls.use(cfg.tls)  # channels to the other bricks present this node's certificate
        interceptors.append(Authorizer(BrickVolumes(service), admin.revoked))
    else:
        log.warning(
            "insecure: plaintext gRPC, no authorization: anyone who reaches listen=%s can "
            "read, change and delete every brick of this node",
            cfg.listen,
        )
    server = grpc.server(
        ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="rpc"),
        options=SERVER_OPTIONS,
        interceptors=interceptors,
    )
    brick_pb2_grpc.add_BrickServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    admin_pb2_grpc.add_AdminServicer_to_server(admin, server)  # type: ignore[no-untyped-call]
    try:
        if cfg.tls is not None and cfg.tls_dir is not None:
            # Reloaded when the folder changes: certificates rotate without a restart.
            creds = tls.Reloader(cfg.tls_dir, cfg.tls, "node").credentials()
            port = server.add_secure_port(cfg.listen, creds)
        else:
            port = server.add_insecure_port(cfg.listen)
    except RuntimeError as e:
        raise ConfigError(f"cannot listen on {cfg.listen}: {e}") from e
    if port == 0:
        raise ConfigError(f"cannot listen on {cfg.listen} (address in use or not local)")
    registry.register(metrics.BrickCollector(service, cfg.zone, lambda: admin.node_id))
    healer = admin.healer = HealWorker(service)
    registry.register(metrics.ReplicationCollector(service.replicas, healer))
    if cfg.metrics_listen:
        try:
            metrics.serve_metrics(cfg.metrics_listen, registry)
        except OSError as e:
            raise ConfigError(str(e)) from e
    server.start()
    healer.start()
    leases = LeaseWorker(service.replicas)
    leases.start()
    log.info(
        "serving listen=%s tls=%s bricks=%s roots=%s pid=%d",
        cfg.listen,
        "mutual" if cfg.tls else "off",
        ",".join(service.bricks),
        ",".join(map(str, cfg.roots)),
        os.getpid(),
    )
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        log.info("stopping signal=%s", signal.Signals(signum).name)
        stop.set()

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_signal)
    while not stop.wait(3600):
        pass
    healer.stop()
    leases.stop()
    server.stop(grace=2).wait()
    for b in service.bricks.values():
        b.close()
    log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    reexec_with_malloc_tunables()
    try:
        cfg = parse_args(sys.argv[1:] if argv is None else argv)
        setup_logging(cfg)
        tracing.setup("gfs-brickd", cfg.otlp_endpoint)
        serve(cfg)
    except (ConfigError, tracing.TracingError) as e:
        print(f"gfs-brickd: {e}", file=sys.stderr)
        sys.exit(2)
    except SystemExit:
        raise
    except OSError as e:
        print(f"gfs-brickd: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
