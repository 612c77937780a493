"""A gfs-brickd serving mutual TLS: who gets in, and what each role may call."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from gfs import certs
from gfs.proto import admin_pb2, admin_pb2_grpc, brick_pb2, brick_pb2_grpc
from gfs.rpc.channel import insecure_channel
from tests.procs import BIN, BrickDaemon, free_port, tls_channel


@dataclass
class TlsBrick:
    daemon: BrickDaemon
    ca: Path
    other_ca: Path


@pytest.fixture(scope="module")
def tb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBrick]:
    tmp = tmp_path_factory.mktemp("tls")
    ca, other = tmp / "ca", tmp / "other"
    certs.init_ca(ca)
    certs.init_ca(other)
    certs.issue(ca, "node", "node0", hosts=["127.0.0.1"])
    certs.issue(ca, "node", "node1", hosts=["127.0.0.1"])
    certs.issue(ca, "admin", "gfsd", hosts=["127.0.0.1"])
    # a brick given as NAME=PATH belongs to the volume of its own name
    certs.issue(ca, "client", "web", volumes=["b0"], hosts=[])
    certs.issue(ca, "client", "elsewhere", volumes=["other"], hosts=[])
    certs.issue(other, "admin", "intruder", hosts=[])
    d = BrickDaemon({"b0": tmp / "b0"}, tmp / "brickd.log", tls=ca / "node0").start()
    try:
        yield TlsBrick(d, ca, other)
    finally:
        d.stop()


def brick(ch: grpc.Channel) -> Any:
    return brick_pb2_grpc.BrickStub(ch)  # type: ignore[no-untyped-call]


def admin(ch: grpc.Channel) -> Any:
    return admin_pb2_grpc.AdminStub(ch)  # type: ignore[no-untyped-call]


def code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code()  # type: ignore[no-any-return]


PING = brick_pb2.PingRequest(brick="b0")


def test_plaintext_client_is_refused(tb: TlsBrick) -> None:
    with insecure_channel(tb.daemon.address) as ch:
        assert code(lambda: brick(ch).Ping(PING, timeout=5)) == grpc.StatusCode.UNAVAILABLE


def test_certificate_of_another_ca_is_refused(tb: TlsBrick) -> None:
    with tls_channel(tb.daemon.address, tb.other_ca / "intruder") as ch:
        assert code(lambda: brick(ch).Ping(PING, timeout=5)) == grpc.StatusCode.UNAVAILABLE
        assert code(lambda: admin(ch).Info(admin_pb2.InfoRequest(), timeout=5)) in (
            grpc.StatusCode.UNAVAILABLE,
        )


def test_client_may_use_its_volume_only(tb: TlsBrick) -> None:
    with tls_channel(tb.daemon.address, tb.ca / "web") as ch:
        assert brick(ch).Ping(PING, timeout=5).err == 0
        assert brick(ch).Statfs(brick_pb2.StatfsRequest(brick="b0"), timeout=5).err == 0
    with tls_channel(tb.daemon.address, tb.ca / "elsewhere") as ch:
        assert code(lambda: brick(ch).Ping(PING, timeout=5)) == grpc.StatusCode.PERMISSION_DENIED


def test_client_may_not_call_admin_or_replication(tb: TlsBrick) -> None:
    with tls_channel(tb.daemon.address, tb.ca / "web") as ch:
        denied = grpc.StatusCode.PERMISSION_DENIED
        assert code(lambda: admin(ch).Info(admin_pb2.InfoRequest(), timeout=5)) == denied
        fwd = brick_pb2.ForwardRequest(brick="b0", epoch=1_000_000)
        assert code(lambda: brick(ch).Forward(fwd, timeout=5)) == denied
        put = brick_pb2.HealPutRequest(brick="b0", epoch=1_000_000)
        assert code(lambda: brick(ch).HealPut(put, timeout=5)) == denied
        sync = brick_pb2.LockSyncRequest(brick="b0", epoch=1_000_000, full=True)
        assert code(lambda: brick(ch).LockSync(sync, timeout=5)) == denied


def test_node_may_forward_but_not_administer(tb: TlsBrick) -> None:
    with tls_channel(tb.daemon.address, tb.ca / "node1") as ch:
        # Answered by the brick (an errno as data: b0 is no configured replica), not refused.
        reply = brick(ch).Forward(brick_pb2.ForwardRequest(brick="b0", epoch=1), timeout=5)
        assert reply.err != 0
        sync = brick_pb2.LockSyncRequest(brick="b0", epoch=1, full=True)
        assert brick(ch).LockSync(sync, timeout=5).err != 0
        denied = grpc.StatusCode.PERMISSION_DENIED
        assert code(lambda: admin(ch).Info(admin_pb2.InfoRequest(), timeout=5)) == denied


def test_admin_may_call_admin(tb: TlsBrick) -> None:
    with tls_channel(tb.daemon.address, tb.ca / "gfsd") as ch:
        assert "b0" in {b.name for b in admin(ch).Info(admin_pb2.InfoRequest(), timeout=5).bricks}


def test_brickd_is_closed_by_default(tmp_path: Path) -> None:
    (tmp_path / "b0").mkdir()
    args = [str(BIN / "gfs-brickd"), "--listen", f"127.0.0.1:{free_port()}"]
    args += ["--brick", f"b0={tmp_path / 'b0'}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "no TLS identity" in r.stderr and "--insecure" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    ca = tmp_path / "ca"
    certs.init_ca(ca)
    certs.issue(ca, "client", "c", volumes=["v"])
    r = subprocess.run([*args, "--tls-dir", str(ca / "c")], capture_output=True, text=True)
    assert r.returncode == 2 and "needs a node certificate" in r.stderr


def test_insecure_start_warns(tmp_path: Path) -> None:
    log = tmp_path / "brickd.log"
    d = BrickDaemon({"b0": tmp_path / "b0"}, log).start()  # plaintext: --insecure
    try:
        assert "insecure: plaintext gRPC, no authorization" in log.read_text()
    finally:
        d.stop()


def test_identity_files(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    certs.init_ca(ca)
    out = certs.issue(ca, "client", "c", volumes=["v1", "v2"])
    assert os.stat(ca / certs.CA_KEY).st_mode & 0o777 == 0o600
    assert os.stat(out / certs.KEY).st_mode & 0o777 == 0o600
    assert os.stat(out).st_mode & 0o777 == 0o700
    m = certs.load(out)
    assert (m.identity.role, m.identity.volumes) == ("client", frozenset({"v1", "v2"}))
    os.chmod(out / certs.KEY, 0o644)
    with pytest.raises(certs.CertError, match="readable by others"):
        certs.load(out)
    with pytest.raises(certs.CertError, match="already holds a CA"):
        certs.init_ca(ca)
    with pytest.raises(certs.CertError, match="role"):
        certs.issue(ca, "root", "x")
