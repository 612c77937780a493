"""Mounted volumes (issue 10, point 4): the bricks know their client sessions, stop and
delete of a mounted volume are refused naming the mounts unless forced, and a forced
stop or delete makes every call of the mount answer ESHUTDOWN at once, with one log
line, instead of a storm of ENODEV."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gfs.api.client import ApiError
from tests.cluster import Cluster
from tests.procs import Mount, wait_for
from tests.replicas import layout, mount

#: a call of a stopped volume's mount answers within this (never the 30 s RPC timeout)
PROMPT = 3.0


def refused(call: Callable[..., Any], *args: Any, **kw: Any) -> ApiError:
    with pytest.raises(ApiError) as e:
        call(*args, **kw)
    return e.value


def calls_answer_eshutdown(root: Path, open_file: Any) -> None:
    """Every kind of call fails at once with ESHUTDOWN."""
    calls: list[Callable[[], object]] = [
        lambda: os.listdir(root),
        lambda: os.stat(root / "f"),
        lambda: (root / "f").read_text(),
        lambda: (root / "new").write_text("x"),
        lambda: os.mkdir(root / "d"),
        lambda: os.write(open_file, b"more"),
        lambda: os.fsync(open_file),
    ]
    for call in calls:
        start = time.monotonic()
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.ESHUTDOWN, call
        assert time.monotonic() - start < PROMPT


def warnings_since(log: Path, offset: int) -> list[str]:
    lines = log.read_bytes()[offset:].decode(errors="replace").splitlines()
    return [ln for ln in lines if " WARNING " in ln or " ERROR " in ln]


def test_stop_and_delete_of_a_mounted_volume(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    opts = f"token-file={c.gfsd.state / 'admin.token'},attr-timeout=0,keepalive=0.5"
    mnt = Mount(f"{c.gfsd.address}:/demo", tmp_path / "mnt", tmp_path / "mnt.log", opts).start()
    root = mnt.mountpoint
    host = socket.gethostname()
    try:
        (root / "f").write_text("kept")
        with c.client() as api:
            # The mount announced itself before it appeared.
            (client,) = api.volume_clients("demo")
            assert client.mountpoint == str(root) and client.hostname == host
            assert client.pid == mnt.proc.pid if mnt.proc else False
            assert sorted(client.bricks) == sorted(b.name for b in layout(c).bricks)

            e = refused(api.volume_stop, "demo")
            assert e.status == 409 and e.code == "volume_in_use"
            assert f"{host}:{root}" in e.message and "--force" in e.message
            assert api.volume("demo").state == "started"
            assert (root / "f").read_text() == "kept"  # nothing happened to the mount

            fd = os.open(root / "f", os.O_WRONLY | os.O_APPEND)
            try:
                offset = mnt.log.stat().st_size
                api.volume_stop("demo", force=True)
                calls_answer_eshutdown(root, fd)
                # A stopped volume still has its mount: delete is refused the same way.
                e = refused(api.volume_delete, "demo", False)
                assert e.status == 409 and e.code == "volume_in_use"
                assert f"{host}:{root}" in e.message

                # Started again, the same mount goes on (no remount); its next keepalive
                # notes that the volume is served again.
                api.volume_start("demo")
                assert (root / "f").read_text() == "kept"
                (root / "g").write_text("after the restart")
                wait_for(lambda: "served again" in mnt.log.read_text(), 10, "the log line")

                api.volume_stop("demo", force=True)
                calls_answer_eshutdown(root, fd)
                api.volume_delete("demo", False, force=True)
                calls_answer_eshutdown(root, fd)
                wait_for(lambda: len(warnings_since(mnt.log, offset)) >= 2, 10, "log lines")
            finally:
                # The kernel frees the descriptor; its flush answers like every call.
                with pytest.raises(OSError) as closed:
                    os.close(fd)
                assert closed.value.errno == errno.ESHUTDOWN
        # One line per stop (the restart in between logged that the volume serves again),
        # never one per call.
        lines = warnings_since(mnt.log, offset)
        assert len(lines) == 2 and all("stopped (or deleted) by gfsd" in ln for ln in lines), lines
    finally:
        mnt.stop()


def test_unmount_ends_the_session_and_a_killed_mount_expires(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    a = mount(c, tmp_path, "a").start()
    opts = f"token-file={c.gfsd.state / 'admin.token'},keepalive=0.2"
    b = Mount(f"{c.gfsd.address}:/demo", tmp_path / "b", tmp_path / "b.log", opts).start()
    try:
        with c.client() as api:
            assert {x.mountpoint for x in api.volume_clients("demo")} == {
                str(a.mountpoint),
                str(b.mountpoint),
            }
            a.stop()  # an unmount ends the session at once
            assert [x.mountpoint for x in api.volume_clients("demo")] == [str(b.mountpoint)]
            # A client killed outright is forgotten after three of its intervals.
            assert b.proc is not None
            b.proc.send_signal(signal.SIGKILL)
            b.proc.wait(10)
            subprocess.run(["fusermount3", "-uz", str(b.mountpoint)], check=False)
            wait_for(lambda: not api.volume_clients("demo"), 5, "the killed mount to expire")
            assert api.volume_stop("demo").state == "stopped"  # nothing mounted: no --force
    finally:
        b.stop()
        a.stop()
