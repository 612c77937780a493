"""The `gfs` command line against a real local cluster made by `gfs cluster up`."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gfs.proto import brick_pb2, brick_pb2_grpc
from tests.procs import tls_channel

BIN = Path(sys.executable).parent
GFS = str(BIN / "gfs")


@dataclass
class Env:
    dir: Path
    home: Path
    api: str
    token: str
    token_file: str
    daemons: list[dict[str, Any]]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GFS, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=timeout,
    )


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """No GFS_* settings and a private HOME, so no user config leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GFS_")}
    env.pop("XDG_CONFIG_HOME", None)
    env["HOME"] = str(home)
    env.update(extra)
    return env


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("gfs: error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base(count: int) -> int:
    # Below the kernel's ephemeral range, so that other tests' free_port() cannot collide,
    # and away from 26000-26300 where developers keep long-running clusters.
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000)
        if 26000 <= base <= 26300:
            continue
        if all(port_free(p) for p in range(base, base + count)):
            return base
    raise RuntimeError("no free port range found")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def kill_leftovers(daemons: list[dict[str, Any]]) -> None:
    """Last resort after `cluster down`: only the pids this test's cluster recorded."""
    for d in daemons:
        if alive(d["pid"]):
            cmdline = Path(f"/proc/{d['pid']}/cmdline").read_bytes()
            if d["address"].encode() in cmdline:
                os.kill(d["pid"], 9)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("cluster")
    home = tmp_path_factory.mktemp("home")
    env = clean_env(home)
    up: subprocess.CompletedProcess[str] | None = None
    for _ in range(3):  # a port may be taken between the check and the daemons' bind
        base = free_base(4)
        up = run("cluster", "up", "--dir", str(root), "--bricks", "3", "--json",
                 "--port-base", str(base), env=env)  # fmt: skip
        if up.returncode == 0 or "in use" not in up.stderr:
            break
    assert up is not None
    daemons: list[dict[str, Any]] = []
    try:
        assert up.returncode == 0, up.stderr
        info = json.loads(up.stdout)
        assert set(info) == {"api", "token", "token_file", "tls_dir", "daemons"}
        assert info["tls_dir"] == str(root / "tls")  # TLS by default
        daemons = info["daemons"]
        assert [d["name"] for d in daemons] == ["gfsd", "node0", "node1", "node2"]
        assert all(alive(d["pid"]) for d in daemons)
        yield Env(root, home, info["api"], info["token"], info["token_file"], daemons)
    finally:
        down = run("cluster", "down", "--dir", str(root), env=env)
        kill_leftovers(daemons)
        assert down.returncode == 0 or not daemons, down.stderr


def gfs(c: Env, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    settings = {"GFS_SERVER": c.api, "GFS_TOKEN_FILE": c.token_file, **extra}
    return run(*args, env=clean_env(c.home, **settings))


def test_peer_list_shows_every_node(cluster: Env) -> None:
    r = gfs(cluster, "peer", "list", "--json")
    assert r.returncode == 0, r.stderr
    peers = json.loads(r.stdout)
    assert sorted(p["address"] for p in peers) == sorted(d["address"] for d in cluster.daemons[1:])
    assert all(p["online"] for p in peers)
    assert sorted(p["zone"] for p in peers) == ["zone0", "zone1", "zone2"]
    table = gfs(cluster, "peer", "list")
    assert table.returncode == 0, table.stderr
    for d in cluster.daemons[1:]:
        assert d["address"] in table.stdout


def test_volume_lifecycle(cluster: Env) -> None:
    r = gfs(cluster, "volume", "create", "life", "--size", "100MiB", "--replica", "3")
    assert r.returncode == 0, r.stderr
    r = gfs(cluster, "volume", "info", "life", "--json")
    assert r.returncode == 0, r.stderr
    vol = json.loads(r.stdout)
    assert vol["name"] == "life" and vol["replica"] == 3
    assert vol["size_bytes"] == 100 * 1024**2
    bricks = [b for rs in vol["replica_sets"] for b in rs["bricks"]]
    assert len(bricks) == 3
    assert len({b["peer_id"] for b in bricks}) == 3
    paths = [Path(b["path"]) for b in bricks]
    for p in paths:
        assert p.is_dir(), p
        assert cluster.dir in p.parents

    listing = gfs(cluster, "volume", "list", "--json")
    assert [v["name"] for v in json.loads(listing.stdout)] == ["life"]

    r = gfs(cluster, "volume", "start", "life")
    assert r.returncode == 0, r.stderr
    r = gfs(cluster, "volume", "status", "life", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["state"] == "started"
    assert len(st["bricks"]) == 3 and all(b["online"] for b in st["bricks"])
    human = gfs(cluster, "volume", "status", "life")
    assert human.returncode == 0 and "life" in human.stdout
    r = gfs(cluster, "volume", "heal", "life", "info", "--json")
    assert r.returncode == 0, r.stderr
    heal = json.loads(r.stdout)["sets"][0]
    assert heal["in_sync"] == 3 and heal["epoch"] == 1
    assert sum(b["primary"] for b in heal["members"]) == 1
    human = gfs(cluster, "volume", "heal", "life", "info")
    assert human.returncode == 0 and "primary" in human.stdout
    bad = gfs(cluster, "volume", "heal", "life", "split-brain")
    assert bad.returncode == 2 and "use info, full" in one_line_error(bad)
    r = gfs(cluster, "volume", "heal", "life", "full")
    assert r.returncode == 0, r.stderr
    assert "healed" in r.stdout and "files checked" in r.stdout

    r = gfs(cluster, "volume", "set", "life", "client.attr-timeout=4")
    assert r.returncode == 0, r.stderr
    assert "client.attr-timeout=4.0 (takes effect at the next mount)" in r.stdout
    r = gfs(cluster, "volume", "set", "life", "replica.min-in-sync=all")
    assert r.returncode == 0, r.stderr
    assert "replica.min-in-sync=all (live" in r.stdout
    heal = json.loads(gfs(cluster, "volume", "heal", "life", "info", "--json").stdout)["sets"][0]
    assert heal["min_in_sync"] == 3 and heal["epoch"] == 2  # pushed as a configuration
    r = gfs(cluster, "volume", "reset", "life", "replica.min-in-sync")
    assert r.returncode == 0 and "(default; live" in r.stdout, r.stderr
    bad = gfs(cluster, "volume", "set", "life", "heal.throttle-mbps=10")
    assert bad.returncode == 1 and "not supported" in one_line_error(bad)
    bad = gfs(cluster, "volume", "set", "life", "auth.allow=client.example")
    assert bad.returncode == 1 and "host names are not accepted" in one_line_error(bad)
    got = gfs(cluster, "volume", "get", "life", "client.attr-timeout", "--json")
    assert json.loads(got.stdout) == {"client.attr-timeout": "4.0"}
    bad = gfs(cluster, "volume", "set", "life", "client.attr-timeout=soon")
    assert bad.returncode == 1 and "client.attr-timeout" in one_line_error(bad)
    r = gfs(cluster, "volume", "reset", "life", "client.attr-timeout")
    assert r.returncode == 0, r.stderr
    got = gfs(cluster, "volume", "get", "life", "client.attr-timeout", "--json")
    assert json.loads(got.stdout) != {"client.attr-timeout": "4.0"}
    r = gfs(cluster, "volume", "expand", "life", "--size", "200MiB")
    assert r.returncode == 0, r.stderr
    grown = json.loads(gfs(cluster, "volume", "info", "life", "--json").stdout)
    assert grown["size_bytes"] == 200 * 1024**2

    # A started volume cannot go: one clear line, exit 1.
    busy = gfs(cluster, "volume", "delete", "life", "--yes")
    assert busy.returncode == 1
    assert "stop" in one_line_error(busy)

    r = gfs(cluster, "volume", "stop", "life")
    assert r.returncode == 0, r.stderr
    info = json.loads(gfs(cluster, "volume", "info", "life", "--json").stdout)
    assert info["state"] == "stopped"
    r = gfs(cluster, "volume", "delete", "life", "--yes", "--delete-data")
    assert r.returncode == 0, r.stderr
    assert not any(p.exists() for p in paths)
    gone = gfs(cluster, "volume", "info", "life")
    assert gone.returncode == 1


def test_volume_from_explicit_bricks(cluster: Env) -> None:
    bricks = [
        f"{d['address']}:{cluster.dir}/{d['name']}/root/explicit" for d in cluster.daemons[1:]
    ]
    r = gfs(cluster, "volume", "create", "explicit", "--replica", "3", *bricks)
    assert r.returncode == 0, r.stderr
    try:
        vol = json.loads(gfs(cluster, "volume", "info", "explicit", "--json").stdout)
        got = sorted(b["path"] for rs in vol["replica_sets"] for b in rs["bricks"])
        assert got == sorted("/" + b.partition(":/")[2] for b in bricks)
        assert all(Path(p).is_dir() for p in got)
        assert vol["size_bytes"] is None
    finally:
        gfs(cluster, "volume", "delete", "explicit", "--yes", "--delete-data")


def test_unknown_volume(cluster: Env) -> None:
    r = gfs(cluster, "volume", "info", "no-such-volume")
    assert r.returncode == 1
    assert "no-such-volume" in one_line_error(r)
    assert r.stdout == ""


def test_wrong_token(cluster: Env) -> None:
    r = gfs(cluster, "--token", "nope", "volume", "list")
    assert r.returncode == 1
    assert "unauthorized" in one_line_error(r).lower()


def test_unreachable_server(cluster: Env) -> None:
    port = free_base(1)
    start = time.monotonic()
    r = gfs(cluster, "--server", f"127.0.0.1:{port}", "peer", "list")
    assert time.monotonic() - start < 10
    assert r.returncode == 1
    assert f"127.0.0.1:{port}" in one_line_error(r)


def test_delete_without_yes_is_refused_when_not_interactive(cluster: Env) -> None:
    r = gfs(cluster, "volume", "create", "keep", "--size", "10MiB")
    assert r.returncode == 0, r.stderr
    try:
        refused = gfs(cluster, "volume", "delete", "keep")
        assert refused.returncode != 0
        assert "--yes" in one_line_error(refused)
        still = gfs(cluster, "volume", "info", "keep", "--json")
        assert json.loads(still.stdout)["name"] == "keep"
    finally:
        gfs(cluster, "volume", "delete", "keep", "--yes", "--delete-data")


def test_unreadable_token_file(cluster: Env) -> None:
    r = gfs(cluster, "volume", "list", GFS_TOKEN_FILE="/nonexistent/token")
    assert r.returncode == 1
    assert "/nonexistent/token" in one_line_error(r)


def test_templates(cluster: Env) -> None:
    r = gfs(cluster, "volume", "template", "list", "--json")
    assert r.returncode == 0, r.stderr
    names = [t["name"] for t in json.loads(r.stdout)]
    assert names
    one = gfs(cluster, "volume", "template", "show", names[0], "--json")
    assert json.loads(one.stdout)["name"] == names[0]
    missing = gfs(cluster, "volume", "template", "show", "no-such-template")
    assert missing.returncode == 1 and "no-such-template" in one_line_error(missing)


def test_install_mount_helper(tmp_path: Path) -> None:
    target = tmp_path / "mount.fuse.gfs"
    r = run("install-mount-helper", "--target", str(target))
    assert r.returncode == 0, r.stderr
    assert target.resolve() == (BIN / "mount.fuse.gfs").resolve()
    again = run("install-mount-helper", "--target", str(target))
    assert again.returncode == 0 and "already" in again.stdout


def test_install_units(tmp_path: Path) -> None:
    r = run("install-units", "--target", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gfs-brickd.service", "gfsd.service"]
    for name, exe, config in [
        ("gfsd.service", "gfsd", "/etc/gfs/gfsd.toml"),
        ("gfs-brickd.service", "gfs-brickd", "/etc/gfs/brickd.toml"),
    ]:
        unit = (tmp_path / name).read_text()
        assert f"ExecStart={BIN}/{exe} --config {config}\n" in unit
        assert "Restart=on-failure" in unit and "After=network-online.target" in unit
    again = run("install-units", "--target", str(tmp_path))
    assert again.returncode == 0 and again.stdout.count("unchanged") == 2
    other = run("install-units", "--target", str(tmp_path), "--bindir", "/opt/x/bin")
    assert other.stdout.count("installed") == 2
    assert "ExecStart=/opt/x/bin/gfsd " in (tmp_path / "gfsd.service").read_text()
    bad = run("install-units", "--target", str(tmp_path / "nope"))
    assert bad.returncode == 2 and "not a directory" in one_line_error(bad)
    rel = run("install-units", "--target", str(tmp_path), "--bindir", "bin")
    assert rel.returncode == 2 and "absolute" in one_line_error(rel)


def test_bad_size_is_one_line(cluster: Env) -> None:
    r = gfs(cluster, "volume", "create", "big", "--size", "lots")
    assert r.returncode == 2
    assert "size" in one_line_error(r)
    listing = gfs(cluster, "volume", "list", "--json")
    assert "big" not in [v["name"] for v in json.loads(listing.stdout)]


def test_usage_errors_are_one_line(cluster: Env) -> None:
    r = gfs(cluster, "volume", "info")
    assert r.returncode == 2
    assert "name" in one_line_error(r).lower()
    r = gfs(cluster, "volume", "create", "v", "--option", "novalue", "--size", "1GiB")
    assert r.returncode == 2
    assert "KEY=VALUE" in one_line_error(r)


def test_cluster_up_twice_is_refused(cluster: Env) -> None:
    base = free_base(4)
    r = run("cluster", "up", "--dir", str(cluster.dir), "--port-base", str(base),
            env=clean_env(cluster.home))  # fmt: skip
    assert r.returncode == 1
    assert "already running" in one_line_error(r)
    assert all(alive(d["pid"]) for d in cluster.daemons)


def test_cluster_up_names_a_taken_port(cluster: Env, tmp_path: Path) -> None:
    port = int(cluster.api.rpartition(":")[2])
    r = run("cluster", "up", "--dir", str(tmp_path / "other"), "--port-base", str(port),
            env=clean_env(cluster.home))  # fmt: skip
    assert r.returncode == 1
    assert str(port) in one_line_error(r)
    assert not (tmp_path / "other" / "cluster.json").exists()


def test_config_file_and_precedence(cluster: Env) -> None:
    cfg = cluster.home / ".config" / "gfs" / "cli.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f'server = "{cluster.api}"\ntoken_file = "{cluster.token_file}"\n')
    try:
        env = clean_env(cluster.home)
        r = run("peer", "list", "--json", env=env)
        assert r.returncode == 0, r.stderr
        assert len(json.loads(r.stdout)) == 3
        # The environment beats the config file, an option beats the environment.
        bad = run("peer", "list", env={**env, "GFS_TOKEN": "nope"})
        assert bad.returncode == 1 and "unauthorized" in one_line_error(bad)
        good = run("--token", cluster.token, "peer", "list", "--json",
                   env={**env, "GFS_TOKEN": "nope"})  # fmt: skip
        assert good.returncode == 0, good.stderr
        cfg.write_text("srever = 1\n")
        broken = run("peer", "list", env=env)
        assert broken.returncode == 2 and "srever" in one_line_error(broken)
    finally:
        cfg.unlink()


def test_cluster_down_stops_daemons_and_keeps_data(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    root = tmp_path / "c"
    up = run("cluster", "up", "--dir", str(root), "--bricks", "1", "--json",
             "--port-base", str(free_base(2)), env=env)  # fmt: skip
    daemons: list[dict[str, Any]] = []
    try:
        assert up.returncode == 0, up.stderr
        daemons = json.loads(up.stdout)["daemons"]
        assert len(daemons) == 2
        down = run("cluster", "down", "--dir", str(root), env=env)
        assert down.returncode == 0, down.stderr
        assert not any(alive(d["pid"]) for d in daemons)
        assert not (root / "cluster.json").exists()
        assert (root / "gfsd" / "admin.token").exists()
        again = run("cluster", "down", "--dir", str(root), env=env)
        assert again.returncode == 1
        assert "no cluster" in one_line_error(again)
    finally:
        if (root / "cluster.json").exists():
            run("cluster", "down", "--dir", str(root), env=env)
        kill_leftovers(daemons)


def test_stop_and_delete_of_a_mounted_volume(cluster: Env) -> None:
    """Refused in one line naming the mount, unless --force (the FUSE side is
    tests/fuse/test_sessions.py; here the mount is its session announcements)."""
    r = gfs(cluster, "volume", "create", "busy", "--size", "10MiB", "--replica", "3")
    assert r.returncode == 0, r.stderr
    try:
        assert gfs(cluster, "volume", "start", "busy").returncode == 0
        vol = json.loads(gfs(cluster, "volume", "info", "busy", "--json").stdout)
        ca = cluster.dir / "tls"
        r = run("certs", "issue", str(ca), "--role", "client", "--name", "web1", "--volume", "busy")
        assert r.returncode == 0, r.stderr
        for b in vol["replica_sets"][0]["bricks"]:
            with tls_channel(b["address"], ca / "web1") as ch:
                stub: Any = brick_pb2_grpc.BrickStub(ch)  # type: ignore[no-untyped-call]
                req = brick_pb2.SessionRequest(
                    brick=b["name"], session="s1", hostname="web1", mountpoint="/mnt/busy",
                    pid=99, interval=60,
                )  # fmt: skip
                assert stub.Session(req, timeout=10).err == 0
        listed = gfs(cluster, "volume", "clients", "busy", "--json")
        assert [c["mountpoint"] for c in json.loads(listed.stdout)] == ["/mnt/busy"]
        table = gfs(cluster, "volume", "clients", "busy")
        assert "web1" in table.stdout and "/mnt/busy" in table.stdout

        for args in (("stop", "busy"), ("delete", "busy", "--yes")):
            if args[0] == "delete":
                r = gfs(cluster, "volume", "stop", "busy", "--force")
                assert r.returncode == 0 and "stopped" in r.stdout, r.stderr
            no = gfs(cluster, "volume", *args)
            assert no.returncode == 1
            line = one_line_error(no)
            assert "web1:/mnt/busy" in line and "--force" in line
        r = gfs(cluster, "volume", "delete", "busy", "--yes", "--force", "--delete-data")
        assert r.returncode == 0, r.stderr
    finally:
        gfs(cluster, "volume", "stop", "busy", "--force")
        gfs(cluster, "volume", "delete", "busy", "--yes", "--force", "--delete-data")


def test_oversized_size_is_one_line(cluster: Env) -> None:
    huge = "9" * 400
    for args in (["volume", "create", "big", "--size", huge], ["volume", "expand", "big", "--size", huge + "GiB"]):  # fmt: skip
        r = gfs(cluster, *args)
        assert r.returncode == 2 and "limit" in one_line_error(r), r.stderr
    listing = gfs(cluster, "volume", "list", "--json")
    assert "big" not in [v["name"] for v in json.loads(listing.stdout)]


def test_peers_sharing_a_host_are_named_with_their_port(cluster: Env) -> None:
    r = gfs(cluster, "peer", "list", "--json")
    me = socket.gethostname()
    names = {p["address"]: p["name"] for p in json.loads(r.stdout)}
    assert names == {a: f"{me}:{a.rpartition(':')[2]}" for a in names}
    table = gfs(cluster, "peer", "list")
    assert all(n in table.stdout for n in names.values())


def test_explicit_bricks_need_an_unambiguous_host(cluster: Env) -> None:
    """Three peers on 127.0.0.1: HOST:/path is refused with the candidates; a peer name
    (or HOST:PORT) picks one."""
    peers = json.loads(gfs(cluster, "peer", "list", "--json").stdout)
    roots = {d["address"]: f"{cluster.dir}/{d['name']}/root" for d in cluster.daemons[1:]}
    bare = [f"127.0.0.1:{roots[p['address']]}/amb" for p in peers]
    r = gfs(cluster, "volume", "create", "amb", "--replica", "3", *bare)
    line = one_line_error(r)
    assert r.returncode == 1 and "HOST:PORT:/PATH" in line and all(p["name"] in line for p in peers)
    named = [f"{p['name']}:{roots[p['address']]}/amb" for p in peers]
    r = gfs(cluster, "volume", "create", "amb", "--replica", "3", *named)
    assert r.returncode == 0, r.stderr
    gfs(cluster, "volume", "delete", "amb", "--yes", "--delete-data")


def test_two_replica_sets_are_refused_at_create(cluster: Env) -> None:
    six = [
        f"{d['address']}:{cluster.dir}/{d['name']}/root/{f}"
        for f in ("w0", "w1")
        for d in cluster.daemons[1:]
    ]
    r = gfs(cluster, "volume", "create", "wide", "--replica", "3", *six)
    assert r.returncode == 1
    assert "more than one replica set is not supported yet" in one_line_error(r)
    assert gfs(cluster, "volume", "info", "wide").returncode == 1


def test_bad_server_replies_and_settings_are_one_line(cluster: Env, tmp_path: Path) -> None:
    """Something that is not gfsd answering, a token no header can carry, a token
    file that is not text: one line each."""
    web = tmp_path / "web"
    (web / "v1").mkdir(parents=True)
    (web / "v1" / "peers").write_text("not json\n")
    port = free_base(1)
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=web,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while port_free(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        r = gfs(cluster, "--server", f"127.0.0.1:{port}", "peer", "list")
        assert r.returncode == 1 and "without JSON" in one_line_error(r)
    finally:
        server.terminate()
        server.wait(10)
    r = gfs(cluster, "--token", "é", "peer", "list")
    assert r.returncode == 1 and "token" in one_line_error(r)
    bad = tmp_path / "token"
    bad.write_bytes(b"\xff\xfe\n")
    r = gfs(cluster, "volume", "list", GFS_TOKEN_FILE=str(bad))
    assert r.returncode == 1 and str(bad) in one_line_error(r)
