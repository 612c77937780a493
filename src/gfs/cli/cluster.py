"""`gfs cluster up|down`: a throw-away local cluster (one gfsd, N gfs-brickd) in a folder.

The daemons are separate processes in their own sessions, so they outlive the
command; DIR/cluster.json records their pids for `down`. The CLI stays a pure
REST client: it only execs the daemons and talks to gfsd over HTTP.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from gfs import certs
from gfs.api.client import ApiError, Client
from gfs.cli.output import CliError, console, print_json

app = typer.Typer(
    help="Run a local test cluster (one gfsd and N gfs-brickd).", no_args_is_help=True
)

BIN = Path(sys.executable).parent
STATE_FILE = "cluster.json"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 15

DirOpt = Annotated[
    Path, typer.Option("--dir", help="folder holding the cluster's state, data and logs")
]


@dataclass
class Daemon:
    name: str
    address: str
    pid: int
    log: str
    exe: str
    log_start: int = 0  # size of the log before this start: older runs are not ours to show

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "pid": self.pid}


# -- processes ---------------------------------------------------------------------------


def _proc_state(pid: int) -> str | None:
    """The state letter from /proc/PID/stat, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return stat.rpartition(")")[2].split()[0]


def is_ours(d: Daemon) -> bool:
    """Whether d.pid is alive and still the recorded daemon (pids get reused)."""
    state = _proc_state(d.pid)
    if state is None or state in ("Z", "X"):
        return False
    try:
        argv = Path(f"/proc/{d.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = {os.fsdecode(a) for a in argv}
    return any(Path(w).name == d.exe for w in words) and d.address in words


def _tail(path: str, start: int = 0, lines: int = LOG_TAIL) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError as e:
        return f"(cannot read {path}: {e.strerror})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # Same as the daemons: a port in TIME_WAIT can be reused.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tcp_ready(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _api_ready(address: str) -> bool:
    with Client(address, None, timeout=2) as api:
        try:
            api.health()
        except ApiError:
            return False
    return True


def spawn(
    name: str, exe: str, args: list[str], address: str, log: Path
) -> tuple[Daemon, subprocess.Popen[bytes]]:
    path = BIN / exe
    if not path.exists():
        raise CliError(f"cannot start {name}: {path} not found")
    with open(log, "ab") as err:
        start = err.tell()
        try:
            proc = subprocess.Popen(
                [str(path), *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:
            raise CliError(f"cannot start {name}: {e.strerror}") from e
    return Daemon(name, address, proc.pid, str(log), exe, start), proc


def terminate(daemons: list[Daemon], timeout: float = STOP_TIMEOUT) -> list[Daemon]:
    """SIGTERM, wait up to `timeout`, then SIGKILL; returns the daemons that were running."""
    alive = [d for d in daemons if is_ours(d)]
    for d in alive:
        _signal(d.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    pending = list(alive)
    while pending and time.monotonic() < deadline:
        pending = [d for d in pending if is_ours(d)]
        if pending:
            time.sleep(0.05)
    for d in pending:
        _signal(d.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        pending = [d for d in pending if is_ours(d)]
        if pending:
            time.sleep(0.05)
    return alive


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


# -- state file --------------------------------------------------------------------------


def load_state(root: Path) -> dict[str, Any] | None:
    path = root / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise CliError(f"{path}: unreadable cluster state: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("daemons"), list):
        raise CliError(f"{path}: not a gfs cluster state file")
    return data


def daemons_of(state: dict[str, Any]) -> list[Daemon]:
    out = []
    for d in state["daemons"]:
        try:
            out.append(Daemon(d["name"], d["address"], int(d["pid"]), d["log"], d["exe"]))
        except (KeyError, TypeError, ValueError):
            continue  # a hand-edited entry: nothing we can safely signal
    return out


def save_state(root: Path, api: str, token_file: Path, daemons: list[Daemon]) -> None:
    data = {
        "api": api,
        "token_file": str(token_file),
        "daemons": [{**d.public(), "log": d.log, "exe": d.exe} for d in daemons],
    }
    tmp = root / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(root / STATE_FILE)


# -- mounts ------------------------------------------------------------------------------


def _unescape(field: bytes) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return os.fsdecode(bytes(out))


def gfs_mounts_under(root: Path) -> list[Path]:
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_bytes().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if b"-" not in fields:
            continue
        fstype = fields[fields.index(b"-") + 1]
        if fstype != b"fuse.gfs":
            continue
        point = Path(_unescape(fields[4]))
        if point == root or root in point.parents:
            found.append(point)
    # Deepest first: a mount inside another must go before its parent.
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount(point: Path) -> str | None:
    """Unmount a FUSE mount; None on success, else the reason."""
    for args in (["fusermount3", "-u"], ["fusermount3", "-uz"]):
        try:
            r = subprocess.run([*args, str(point)], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return str(e)
        if r.returncode == 0:
            return None
    return r.stderr.strip() or f"fusermount3 exited with {r.returncode}"


# -- commands ----------------------------------------------------------------------------


def _wait_all(
    checks: list[tuple[Daemon, subprocess.Popen[bytes], Callable[[], bool]]], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    pending = list(checks)
    while pending:
        for item in list(pending):
            d, proc, ready = item
            code = proc.poll()
            if code is not None:
                raise _Failed(d, f"{d.name} exited with code {code}")
            if ready():
                pending.remove(item)
        if pending:
            if time.monotonic() > deadline:
                d = pending[0][0]
                raise _Failed(d, f"{d.name} did not answer on {d.address} within {timeout:.0f}s")
            time.sleep(0.05)


class _Failed(Exception):
    def __init__(self, daemon: Daemon, message: str) -> None:
        super().__init__(message)
        self.daemon = daemon
        self.message = message


def _identities(ca_dir: Path, nodes: list[str]) -> Callable[[str], list[str]]:
    """The CA (made once, kept across restarts), gfsd's admin certificate and one node
    certificate per brick daemon; returns each daemon's TLS arguments."""
    if not (ca_dir / certs.CA_KEY).exists():
        certs.init_ca(ca_dir, "gfs local cluster CA")
    for name, role in [("gfsd", "admin"), *((n, "node") for n in nodes)]:
        if not (ca_dir / name / certs.CERT).exists():
            certs.issue(ca_dir, role, name, hosts=["127.0.0.1", "localhost"])
    return lambda name: ["--tls-dir", str(ca_dir / name)]


@app.command("up")
def up(
    directory: DirOpt,
    bricks: Annotated[int, typer.Option("--bricks", min=1, max=64, help="brick daemons")] = 3,
    port_base: Annotated[
        int,
        typer.Option(
            "--port-base",
            min=1024,
            max=65000,
            help="gfsd listens on this port, brick daemon i on port-base+1+i",
        ),
    ] = 24100,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="plaintext gRPC, no certificates (not for real use)")
    ] = False,
) -> None:
    """Start gfsd and N gfs-brickd on 127.0.0.1 with their data in DIR, with mutual TLS:
    a cluster CA in DIR/tls (made at the first start), a certificate per daemon, and
    gfsd signing volume credentials with that CA."""
    root = directory.expanduser().resolve()
    if port_base + bricks > 65535:
        raise CliError(f"ports {port_base}..{port_base + bricks} exceed 65535")
    state = load_state(root)
    if state is not None:
        running = [d for d in daemons_of(state) if is_ours(d)]
        if running:
            pids = ", ".join(f"{d.name}={d.pid}" for d in running)
            raise CliError(
                f"a cluster is already running in {root} ({pids}); "
                f"stop it with: gfs cluster down --dir {root}"
            )
    for port in range(port_base, port_base + bricks + 1):
        if not _port_free(port):
            raise CliError(
                f"port {port} on 127.0.0.1 is already in use; choose another range with --port-base"
            )
    logs = root / "log"
    try:
        logs.mkdir(parents=True, exist_ok=True)
        for i in range(bricks):
            (root / f"node{i}" / "root").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"cannot prepare {root}: {e.strerror}") from e
    api = f"127.0.0.1:{port_base}"
    state_dir = root / "gfsd"
    ca_dir = root / "tls"
    try:
        tls_args = (
            (lambda _: ["--insecure"])
            if insecure
            else _identities(ca_dir, [f"node{i}" for i in range(bricks)])
        )
    except (certs.CertError, OSError) as e:
        raise CliError(f"cannot make the cluster's certificates in {ca_dir}: {e}") from e
    token_file = state_dir / "admin.token"

    started: list[tuple[Daemon, subprocess.Popen[bytes], Callable[[], bool]]] = []
    try:
        log = logs / "gfsd.log"
        d, p = spawn(
            "gfsd",
            "gfsd",
            ["--listen", api, "--state-dir", str(state_dir), "--log-file", str(log)]
            # --ca-dir: gfsd signs the volume credentials mounts use (never the admin token)
            + ([] if insecure else ["--tls-dir", str(ca_dir / "gfsd"), "--ca-dir", str(ca_dir)]),
            api,
            log,
        )
        started.append((d, p, lambda: _api_ready(api)))
        for i in range(bricks):
            addr = f"127.0.0.1:{port_base + 1 + i}"
            log = logs / f"node{i}.log"
            args = ["--listen", addr, "--root", str(root / f"node{i}" / "root")]
            args += ["--zone", f"zone{i}", "--log-file", str(log), *tls_args(f"node{i}")]
            d, p = spawn(f"node{i}", "gfs-brickd", args, addr, log)
            started.append((d, p, functools.partial(_tcp_ready, addr)))
            # Recorded as they start, so that `down` can clean up after an interrupted `up`.
            save_state(root, api, token_file, [s[0] for s in started])
        save_state(root, api, token_file, [s[0] for s in started])
        _wait_all(started, START_TIMEOUT)
        token = token_file.read_text().strip()
        with Client(api, token) as client:
            for d, _, _ in started[1:]:
                try:
                    client.peer_add(d.address)
                except ApiError as e:
                    if e.status != 409:  # already a peer: a restarted cluster
                        raise CliError(f"cannot add peer {d.address}: {e.message}") from e
    except BaseException as e:
        terminate([s[0] for s in started])
        (root / STATE_FILE).unlink(missing_ok=True)
        if isinstance(e, _Failed):
            raise CliError(
                f"{e.message}; last lines of {e.daemon.log}:\n{_tail(e.daemon.log, e.daemon.log_start)}"
            ) from None
        if isinstance(e, OSError):
            raise CliError(f"cannot start the cluster: {e}") from None
        raise
    daemons = [s[0] for s in started]
    if json_out:
        print_json(
            {
                "api": api,
                "token": token,
                "token_file": str(token_file),
                "tls_dir": None if insecure else str(ca_dir),
                "daemons": [d.public() for d in daemons],
            }
        )
        return
    out = console()
    out.print(f"cluster up in {escape(str(root))}")
    out.print(f"api:        {api}")
    out.print(f"token:      {token}", markup=False)
    out.print(f"token file: {escape(str(token_file))}")
    t = Table("NAME", "ADDRESS", "PID", "LOG")
    for d in daemons:
        t.add_row(d.name, d.address, str(d.pid), escape(d.log))
    out.print(t)
    if insecure:
        out.print("[bold red]insecure[/]: plaintext gRPC, anyone on this host may use the bricks")
    else:
        out.print(
            f"TLS:        CA in {escape(str(ca_dir))}; a mount needs a volume credential: "
            "gfs volume credential create VOLUME --name NAME --out DIR, "
            "then -o credential=DIR"
        )
    out.print(f"use it with: export GFS_SERVER={api} GFS_TOKEN_FILE={escape(str(token_file))}")


@app.command("down")
def down(directory: DirOpt) -> None:
    """Unmount gfs mounts under DIR and stop the cluster's daemons; data stays."""
    root = directory.expanduser().resolve()
    state = load_state(root)
    if state is None:
        raise CliError(f"no cluster recorded in {root} (no {STATE_FILE})")
    problems = []
    for point in gfs_mounts_under(root):
        reason = unmount(point)
        if reason:
            problems.append(f"cannot unmount {point}: {reason}")
        else:
            typer.echo(f"unmounted {point}")
    stopped = terminate(daemons_of(state))
    (root / STATE_FILE).unlink(missing_ok=True)
    typer.echo(f"stopped {len(stopped)} daemon(s); data kept in {root}")
    if problems:
        raise CliError("; ".join(problems))
