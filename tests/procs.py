"""Real gfs processes for tests: brick daemons and FUSE mounts that always clean up."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx

from gfs.proto import brick_pb2, brick_pb2_grpc
from gfs.rpc import tls
from gfs.rpc.channel import OPTIONS, insecure_channel

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `cond` until true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    """Signal `proc` and reap it; SIGKILL if it has not gone after 15 s."""
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def is_mounted(path: Path) -> bool:
    target = os.fsencode(os.path.realpath(path))
    with open("/proc/self/mountinfo", "rb") as f:
        return any(line.split()[4] == target for line in f)


def unmount(mountpoint: Path) -> None:
    """Unmount a FUSE mount if mounted; lazily when it is busy."""
    if is_mounted(mountpoint):
        r = subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["fusermount3", "-uz", str(mountpoint)], capture_output=True)


def tls_channel(address: str, identity: Path | None = None) -> grpc.Channel:
    """A channel as a test's own process opens it: mutual TLS with the identity folder
    `identity` (gfs certs issue), plaintext without."""
    if identity is None:
        return insecure_channel(address)
    creds = tls.channel_credentials(tls.load_dir(identity))
    return grpc.secure_channel(address, creds, options=OPTIONS)


class BrickDaemon:
    def __init__(
        self,
        bricks: dict[str, Path],
        log: Path,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        wrap: list[str] | None = None,
        tls: Path | None = None,
    ) -> None:
        """`wrap` prefixes the command (e.g. nsenter into a network namespace). `tls`: the
        node identity folder to serve with; without it the daemon runs --insecure."""
        self.tls = tls
        self.bricks = bricks
        self.log = log
        self.extra = extra or []
        self.env = env or {}
        self.wrap = wrap or []
        self.port = free_port()
        self.address = f"{host}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> BrickDaemon:
        for p in self.bricks.values():
            p.mkdir(parents=True, exist_ok=True)
        args = [*self.wrap, str(BIN / "gfs-brickd"), "--listen", self.address]
        for name, path in self.bricks.items():
            args += ["--brick", f"{name}={path}"]
        args += ["--tls-dir", str(self.tls)] if self.tls else ["--insecure"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                args + self.extra,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        try:
            wait_for(self._ready, timeout, f"gfs-brickd on {self.address} (log {self.log})")
        except BaseException:
            self.stop(signal.SIGKILL)  # the caller never gets it to stop
            raise
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"gfs-brickd exited with {self.proc.returncode}: {self.log.read_text()}"
            )
        name = next(iter(self.bricks))
        with tls_channel(self.address, self.tls) as ch:
            try:
                reply = brick_pb2_grpc.BrickStub(ch).Ping(
                    brick_pb2.PingRequest(brick=name), timeout=1
                )
            except grpc.RpcError:
                return False
        return reply.err == 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.proc, sig)


class Mount:
    def __init__(
        self,
        source: str,
        mountpoint: Path,
        log: Path,
        options: str = "",
        wrap: list[str] | None = None,
    ) -> None:
        """`wrap` prefixes the command (e.g. nsenter into a network namespace)."""
        self.wrap = wrap or []
        self.source = source
        self.mountpoint = mountpoint
        self.log = log
        self.options = options
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> Mount:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        args = [*self.wrap, str(BIN / "mount.fuse.gfs"), self.source, str(self.mountpoint), "-f"]
        if self.options:
            args += ["-o", self.options]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mount.fuse.gfs exited with {self.proc.returncode}: {self.log.read_text()}"
                )
            return is_mounted(self.mountpoint)

        wait_for(ready, timeout, f"mount of {self.source} on {self.mountpoint}")
        return self

    def stop(self) -> None:
        unmount(self.mountpoint)
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def have_fuse() -> bool:
    return (
        os.path.exists("/dev/fuse")
        and os.geteuid() == 0
        and shutil.which("fusermount3") is not None
    )


class Gfsd:
    """A real gfsd on loopback with its state dir; `token` is read from the state dir."""

    def __init__(
        self,
        state: Path,
        log: Path,
        db: str | None = None,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        tls: Path | None = None,
        ca: Path | None = None,
    ) -> None:
        """`tls`: gfsd's admin identity folder, for TLS brick daemons; `ca`: the cluster
        CA folder it signs volume credentials with (--ca-dir)."""
        self.tls = tls
        self.ca = ca
        self.state = state
        self.log = log
        self.db = db
        self.env = env or {}
        self.host = host
        self.port = free_port()
        self.address = f"{host}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60, wait: bool = True) -> Gfsd:
        """`wait`: until /v1/health answers."""
        args = [str(BIN / "gfsd"), "--listen", self.address, "--state-dir", str(self.state)]
        if self.db:
            args += ["--db", self.db]
        if self.tls:
            args += ["--tls-dir", str(self.tls)]
        if self.ca:
            args += ["--ca-dir", str(self.ca)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        if wait:
            try:
                wait_for(self._ready, timeout, f"gfsd on {self.address} (log {self.log})")
            except BaseException:
                self.stop(signal.SIGKILL)  # the caller never gets it to stop
                raise
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"gfsd exited with {self.proc.returncode}: {self.log.read_text()}")
        # It listens before it is ready (migrations, recovery): ask what it answers.
        try:
            return httpx.get(f"http://{self.address}/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def token(self) -> str:
        return (self.state / "admin.token").read_text().strip()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.proc, sig)
