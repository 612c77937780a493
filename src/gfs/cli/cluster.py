"""`gfs cluster up|down`: a local cluster for trying gfs and for scripts — one gfsd
on SQLite and N brick daemons, everything (state, brick roots, logs) under DIR,
each daemon in its own session, their pids in DIR/cluster.json."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from gfs.api.client import ApiError, Client

app = typer.Typer(
    help="A local cluster in one folder (gfsd + brick daemons).", no_args_is_help=True
)
BIN = Path(sys.executable).parent
STATE = "cluster.json"


def fail(message: str) -> NoReturn:
    print(f"gfs: error: {message}", file=sys.stderr)
    raise typer.Exit(1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_listening(name: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{name} exited ({proc.returncode}): {' | '.join(tail)}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start listening on port {port} within 30 s (log {log})")


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as f:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=f,
            start_new_session=True,
        )


def stop_pids(pids: list[int]) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@app.command()
def up(
    dir: Annotated[Path, typer.Option("--dir", help="folder for everything")],
    bricks: Annotated[int, typer.Option(help="brick daemons (peers)", min=1, max=16)] = 3,
    port_base: Annotated[
        int, typer.Option(help="gfsd's port; brick daemons use the next ones", min=1024, max=65000)
    ] = 24100,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Start gfsd and N brick daemons under DIR and add them as peers."""
    dir = dir.resolve()
    state_file = dir / STATE
    if state_file.exists():
        old = json.loads(state_file.read_text())
        if any(alive(d["pid"]) for d in old["daemons"]):
            fail(f"a cluster is already running in {dir} (gfs cluster down --dir {dir})")
    busy = [p for p in range(port_base, port_base + bricks + 1) if not port_free(p)]
    if busy:
        fail(f"port {busy[0]} is in use; choose another --port-base")
    (dir / "log").mkdir(parents=True, exist_ok=True)
    daemons: list[dict[str, Any]] = []
    started: list[int] = []
    try:
        for i in range(bricks):
            root = dir / f"node{i}" / "root"
            root.mkdir(parents=True, exist_ok=True)
            port = port_base + 1 + i
            log = dir / "log" / f"brickd{i}.log"
            p = spawn(
                [
                    str(BIN / "gfs-brickd"),
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--root",
                    str(root),
                    "--zone",
                    f"zone{i}",
                    "--log-file",
                    str(log),
                ],
                log,
            )
            started.append(p.pid)
            wait_listening(f"gfs-brickd {i}", port, p, log)
            daemons.append({"name": f"brickd{i}", "address": f"127.0.0.1:{port}", "pid": p.pid})
        log = dir / "log" / "gfsd.log"
        api = f"127.0.0.1:{port_base}"
        p = spawn(
            [
                str(BIN / "gfsd"),
                "--listen",
                api,
                "--state-dir",
                str(dir / "gfsd"),
                "--log-file",
                str(log),
            ],
            log,
        )
        started.append(p.pid)
        wait_listening("gfsd", port_base, p, log)
        daemons.insert(0, {"name": "gfsd", "address": api, "pid": p.pid})
        token_file = dir / "gfsd" / "admin.token"
        token = token_file.read_text().strip()
        state_file.write_text(
            json.dumps({"api": api, "token_file": str(token_file), "daemons": daemons}, indent=1)
        )
        with Client(api, token) as c:
            known = {x.address for x in c.peers()}
            for d in daemons[1:]:
                if d["address"] not in known:
                    c.peer_add(d["address"])
    except (RuntimeError, ApiError, OSError) as e:
        stop_pids(started)
        state_file.unlink(missing_ok=True)
        fail(str(e))
    if as_json:
        print(
            json.dumps(
                {"api": api, "token": token, "token_file": str(token_file), "daemons": daemons}
            )
        )
        return
    print(f"gfs cluster up in {dir}")
    print(f"  API    http://{api}   token file {token_file}")
    for d in daemons:
        print(f"  {d['name']:8} {d['address']:22} pid {d['pid']}")
    print(f"  export GFS_SERVER={api} GFS_TOKEN_FILE={token_file}")
    print(f"Stop it with: gfs cluster down --dir {dir}")


def gfs_mounts_under(dir: Path) -> list[str]:
    found = []
    prefix = os.fsencode(str(dir)) + b"/"
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index(b"-") + 1]
            if fields[4].startswith(prefix) and fstype == b"fuse.gfs":
                found.append(os.fsdecode(fields[4]))
    return found


@app.command()
def down(dir: Annotated[Path, typer.Option("--dir", help="the cluster's folder")]) -> None:
    """Unmount gfs mounts under DIR and stop the cluster's daemons (data stays)."""
    dir = dir.resolve()
    for mp in gfs_mounts_under(dir):
        r = subprocess.run(["fusermount3", "-u", mp], capture_output=True, text=True)
        if r.returncode:
            subprocess.run(["fusermount3", "-uz", mp], capture_output=True)
    state_file = dir / STATE
    if not state_file.exists():
        fail(f"no cluster recorded in {dir}")
    state = json.loads(state_file.read_text())
    stop_pids([d["pid"] for d in state["daemons"]])
    state_file.unlink()
    print(f"gfs cluster in {dir} stopped (data kept)")
