"""mount.fuse.gfs as a user runs it: errors, background mode, unmount and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.procs import BIN, BrickDaemon, Mount, free_port, is_mounted, wait_for

HELPER = str(BIN / "mount.fuse.gfs")


def run(*args: str, timeout: float = 30) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    r = subprocess.run([HELPER, *args], capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t0


def one_line_error(r: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("opts", "text"),
    [
        ("bogus", "unknown mount option 'bogus'"),
        ("attr-timeout=soon", "expected a number"),
        ("entry-timeout=-1", "must be a number >= 0"),
        ("rpc-timeout=0", "must be a number >= 0.1"),
        ("writeback=maybe", "use on or off"),
        ("log-level=loud", "use one of"),
        ("read-ahead=2", "KiB between 4 and 65536"),
        ("keepalive=0", "must be a number >= 0.1"),
        ("keepalive=nan", "must be a number >= 0.1"),
        ("keepalive=7200", "at most 3600 seconds"),
    ],
)
def test_bad_options(brickd: BrickDaemon, tmp_path: Path, opts: str, text: str) -> None:
    (tmp_path / "mnt").mkdir()
    r, _ = run(f"{brickd.address}/b0", str(tmp_path / "mnt"), "-o", opts)
    one_line_error(r, 2, text)
    assert not is_mounted(tmp_path / "mnt")


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("127.0.0.1:1234", "expected [brick=]HOST:PORT/BRICK"),
        ("127.0.0.1:1234/", "missing brick name"),
        ("nohost/b0", "HOST:PORT"),
    ],
)
def test_bad_sources(tmp_path: Path, source: str, text: str) -> None:
    r, _ = run(source, str(tmp_path))
    one_line_error(r, 2, text)


def test_unreachable_brick_fails_fast(tmp_path: Path) -> None:
    r, took = run(f"brick=127.0.0.1:{free_port()}/b0", str(tmp_path), "-f")
    one_line_error(r, 1, "cannot reach gfs-brickd")
    assert took < 15


def test_missing_brick_name(brickd: BrickDaemon, tmp_path: Path) -> None:
    r, _ = run(f"{brickd.address}/nope", str(tmp_path))
    one_line_error(r, 1, "no brick named 'nope'")


def test_missing_mountpoint(brickd: BrickDaemon, tmp_path: Path) -> None:
    r, _ = run(f"{brickd.address}/b0", str(tmp_path / "absent"))
    one_line_error(r, 1, "does not exist")


def test_background_mount_and_umount(brickd: BrickDaemon, tmp_path: Path) -> None:
    mp = tmp_path / "mnt"
    mp.mkdir()
    log = tmp_path / "client.log"
    r, _ = run(f"brick={brickd.address}/b0", str(mp), "-o", f"log-file={log},_netdev,noatime")
    try:
        assert r.returncode == 0, r.stderr
        assert is_mounted(mp)  # mounted by the time the helper returns
        (mp / "hello").write_text("world")
        assert (brickd.bricks["b0"] / "hello").read_text() == "world"
        pid = int(log.read_text().split("pid=")[1].split()[0])
        subprocess.run(["umount", str(mp)], check=True)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "client exit after umount")
    finally:
        if is_mounted(mp):
            subprocess.run(["fusermount3", "-uz", str(mp)])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_unmounts_and_exits(brickd: BrickDaemon, tmp_path: Path, sig: int) -> None:
    m = Mount(f"{brickd.address}/b0", tmp_path / "mnt", tmp_path / "mount.log").start()
    try:
        assert m.proc is not None
        m.proc.send_signal(sig)
        assert m.proc.wait(10) == 0
        assert not is_mounted(m.mountpoint)
    finally:
        m.stop()


def test_brick_daemon_gone_gives_errno_not_hang(tmp_path: Path) -> None:
    d = BrickDaemon({"b0": tmp_path / "b0"}, tmp_path / "brickd.log").start()
    m = Mount(
        f"{d.address}/b0", tmp_path / "mnt", tmp_path / "mount.log", "rpc-timeout=2,attr-timeout=0"
    ).start()
    try:
        (m.mountpoint / "f").write_text("x")
        d.stop(signal.SIGKILL)
        probe = subprocess.run(
            ["stat", str(m.mountpoint / "f")], capture_output=True, text=True, timeout=30
        )
        assert probe.returncode != 0
        assert "Transport endpoint is not connected" in probe.stderr or "timed out" in probe.stderr
    finally:
        m.stop()
        d.stop()


def test_read_ahead_applied(brickd: BrickDaemon, tmp_path: Path) -> None:
    m = Mount(f"{brickd.address}/b0", tmp_path / "mnt", tmp_path / "mount.log", "read-ahead=512")
    m.start()
    try:
        dev = os.stat(m.mountpoint).st_dev
        knob = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
        wait_for(lambda: knob.read_text().strip() == "512", 10, "read-ahead set on the mount")
    finally:
        m.stop()
