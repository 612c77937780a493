"""The gfs CLI as users run it: real subprocesses against a cluster made by
`gfs cluster up`, torn down by `gfs cluster down`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import BIN, free_port


def free_base() -> int:
    for _ in range(50):
        base = free_port()
        if base < 60000 and all(_free(base + i) for i in range(1, 5)):
            return base
    raise RuntimeError("no run of 5 free ports")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def gfs(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "gfs"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    d = tmp_path_factory.mktemp("cluster")
    r = gfs(
        "cluster", "up", "--dir", str(d), "--bricks", "3", "--port-base", str(free_base()), "--json"
    )
    try:
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        yield d, info
    finally:
        gfs("cluster", "down", "--dir", str(d))


def env_of(info: dict[str, Any]) -> dict[str, str]:
    return {"GFS_SERVER": info["api"], "GFS_TOKEN_FILE": info["token_file"]}


def one_line(r: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert r.returncode == code, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_cluster_json_and_peers(cluster: tuple[Path, dict[str, Any]]) -> None:
    d, info = cluster
    assert [x["name"] for x in info["daemons"]] == ["gfsd", "brickd0", "brickd1", "brickd2"]
    assert all(Path(f"/proc/{x['pid']}").exists() for x in info["daemons"])
    r = gfs("peer", "list", "--json", env=env_of(info))
    assert r.returncode == 0, r.stderr
    peers = json.loads(r.stdout)
    assert sorted(p["address"] for p in peers) == sorted(x["address"] for x in info["daemons"][1:])
    one_line(gfs("cluster", "up", "--dir", str(d)), 1, "already running")


def test_volume_lifecycle(cluster: tuple[Path, dict[str, Any]]) -> None:
    _, info = cluster
    env = env_of(info)
    r = gfs("volume", "create", "v1", "--replica", "3", "--size", "100MiB", env=env)
    assert r.returncode == 0, r.stderr
    v = json.loads(gfs("volume", "info", "v1", "--json", env=env).stdout)
    bricks = [b for rs in v["replica_sets"] for b in rs["bricks"]]
    assert len(bricks) == 3 and len({b["peer_id"] for b in bricks}) == 3
    assert all(Path(b["path"]).is_dir() for b in bricks)
    assert gfs("volume", "start", "v1", env=env).returncode == 0
    st = json.loads(gfs("volume", "status", "v1", "--json", env=env).stdout)
    assert [b["online"] for b in st["bricks"]] == [True, True, True]
    assert gfs("volume", "set", "v1", "client.attr-timeout=4", env=env).returncode == 0
    got = json.loads(gfs("volume", "get", "v1", "client.attr-timeout", "--json", env=env).stdout)
    assert got == {"client.attr-timeout": "4.0"}
    one_line(
        gfs("volume", "set", "v1", "client.attr-timeout=soon", env=env), 1, "expected a number"
    )
    one_line(gfs("volume", "delete", "v1", env=env), 2, "needs --yes")
    assert gfs("volume", "stop", "v1", env=env).returncode == 0
    r = gfs("volume", "delete", "v1", "--delete-data", "--yes", env=env)
    assert r.returncode == 0, r.stderr
    assert not any(Path(b["path"]).exists() for b in bricks)
    assert json.loads(gfs("volume", "list", "--json", env=env).stdout) == []


def test_errors(cluster: tuple[Path, dict[str, Any]]) -> None:
    _, info = cluster
    env = env_of(info)
    one_line(gfs("volume", "info", "nope", env=env), 1, "no volume 'nope'")
    one_line(gfs("--token", "nope", "volume", "list", env=env), 1, "bearer token")
    one_line(gfs("volume", "create", "x", "--size", "lots", env=env), 2, "size")
    one_line(
        gfs("volume", "create", "x", "--option", "novalue", "--size", "1MiB", env=env),
        2,
        "KEY=VALUE",
    )
    t0 = time.monotonic()
    one_line(
        gfs("--server", f"127.0.0.1:{free_port()}", "volume", "list", env=env),
        1,
        "cannot reach gfsd",
    )
    assert time.monotonic() - t0 < 30
    one_line(
        gfs("volume", "list", env={"GFS_SERVER": info["api"], "GFS_TOKEN_FILE": "/nonexistent"}),
        1,
        "cannot read the token",
    )


def test_install_mount_helper(tmp_path: Path) -> None:
    target = tmp_path / "mount.fuse.gfs"
    r = gfs("install-mount-helper", "--target", str(target))
    assert r.returncode == 0, r.stderr
    assert target.resolve() == (BIN / "mount.fuse.gfs").resolve()
    assert gfs("install-mount-helper", "--target", str(target)).returncode == 0
