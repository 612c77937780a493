"""Certificate rotation without a restart (issue 12): a running gfs-brickd serves a
renewed certificate to new connections, and moves to a new cluster CA in the steps
docs/security.md gives, while connections made before keep working throughout."""

from __future__ import annotations

import socket
import ssl
import subprocess
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from gfs import certs
from gfs.proto import brick_pb2, brick_pb2_grpc
from tests.procs import BIN, BrickDaemon, tls_channel, wait_for

PING = brick_pb2.PingRequest(brick="b0")


def served_serial(address: str, identity: Path) -> int:
    """The serial of the certificate the daemon presents to a new connection."""
    host, port = address.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(identity / certs.CA_CERT))
    ctx.load_cert_chain(identity / certs.CERT, identity / certs.KEY)
    ctx.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as s,
    ):
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def serial_of(identity: Path) -> int:
    return x509.load_pem_x509_certificate((identity / certs.CERT).read_bytes()).serial_number


def ping(address: str, identity: Path) -> bool:
    with tls_channel(address, identity) as ch:
        try:
            return brick_pb2_grpc.BrickStub(ch).Ping(PING, timeout=5).err == 0  # type: ignore[no-untyped-call]
        except grpc.RpcError:
            return False


def test_renewed_certificate_and_new_ca_without_restart(tmp_path: Path) -> None:
    old, new = tmp_path / "ca1", tmp_path / "ca2"
    certs.init_ca(old)
    node = certs.issue(old, "node", "node0", hosts=["127.0.0.1"], out=tmp_path / "node0")
    web = certs.issue(old, "client", "web", volumes=["b0"], hosts=[], out=tmp_path / "web")
    d = BrickDaemon({"b0": tmp_path / "b0"}, tmp_path / "brickd.log", tls=node).start()
    assert d.proc is not None
    pid = d.proc.pid
    try:
        kept = tls_channel(d.address, web)  # made before any change, used after each
        stub = brick_pb2_grpc.BrickStub(kept)  # type: ignore[no-untyped-call]
        assert stub.Ping(PING, timeout=5).err == 0
        first = served_serial(d.address, web)
        assert first == serial_of(node)

        # 1. Renewal by the same CA, written over the running daemon's folder.
        certs.issue(old, "node", "node0", hosts=["127.0.0.1"], out=node)
        assert serial_of(node) != first
        assert served_serial(d.address, web) == serial_of(node)
        assert "tls reloaded" in d.log.read_text()
        assert stub.Ping(PING, timeout=5).err == 0

        # 2. A new CA: first trusted everywhere beside the old one...
        certs.init_ca(new)
        web2 = certs.issue(new, "client", "web2", volumes=["b0"], hosts=[], out=tmp_path / "w2")
        assert not ping(d.address, web2)  # the daemon does not know the new CA yet
        certs.trust(node, [new])
        certs.trust(web, [new])
        certs.trust(web2, [old])
        wait_for(lambda: ping(d.address, web2), 10, "the daemon to trust the new CA")
        # ...then the daemon's certificate from the new CA (it keeps trusting both)...
        certs.issue(new, "node", "node0", hosts=["127.0.0.1"], out=node)
        assert served_serial(d.address, web2) == serial_of(node)
        assert ping(d.address, web) and ping(d.address, web2)
        # ...then the old CA dropped: its clients are refused from their next connection.
        certs.trust(node, [])
        assert (node / certs.CA_CERT).read_bytes().count(b"BEGIN CERTIFICATE") == 1
        wait_for(lambda: not ping(d.address, web), 10, "the old CA's client to be refused")
        assert ping(d.address, web2)
        assert stub.Ping(PING, timeout=5).err == 0  # the connection from before: still up
        kept.close()
        assert d.proc.poll() is None and d.proc.pid == pid
    finally:
        d.stop()


def test_a_broken_folder_keeps_the_served_certificate(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    certs.init_ca(ca)
    node = certs.issue(ca, "node", "node0", hosts=["127.0.0.1"], out=tmp_path / "node0")
    web = certs.issue(ca, "client", "web", volumes=["b0"], hosts=[], out=tmp_path / "web")
    d = BrickDaemon({"b0": tmp_path / "b0"}, tmp_path / "brickd.log", tls=node).start()
    try:
        served = served_serial(d.address, web)
        # A client certificate where the node's was: refused, the node's is served on.
        other = certs.issue(ca, "client", "x", volumes=["b0"], hosts=[], out=tmp_path / "x")
        (node / certs.CERT).write_bytes((other / certs.CERT).read_bytes())
        (node / certs.KEY).write_bytes((other / certs.KEY).read_bytes())
        assert served_serial(d.address, web) == served
        assert ping(d.address, web)
        assert "tls reload refused" in d.log.read_text()
    finally:
        d.stop()


def test_trust_cli_refuses_what_is_not_a_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    certs.init_ca(ca)
    node = certs.issue(ca, "node", "node0", hosts=["127.0.0.1"], out=tmp_path / "node0")
    r = subprocess.run(
        [str(BIN / "gfs"), "certs", "trust", str(node), str(node / certs.CERT)],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert "is not a CA certificate" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [str(BIN / "gfs"), "certs", "trust", str(node), str(ca)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    with pytest.raises(certs.CertError, match="no CA certificate"):
        certs.trust(node, [tmp_path / "missing.crt"])
