"""Volume credentials (`gfs volume credential create|list|revoke`, /v1/credentials) on a
real TLS cluster, on SQLite and PostgreSQL: gfsd signs a client certificate for some
volumes with the cluster CA and gives a token that reads only their layout; revoking
cuts the token off and puts the certificate on every brick daemon's revocation list,
also on a daemon that was down during the revoke."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from gfs import certs
from gfs.api import models as m
from gfs.api.client import ApiError
from gfs.proto import admin_pb2, admin_pb2_grpc
from tests.cluster import Cluster, local_cluster
from tests.procs import BIN, Gfsd, tls_channel, wait_for

DEADLINE = 30


@pytest.fixture
def cluster(db_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with local_cluster(tmp_path, db_url, tls=True) as c, c.client() as api:
        for name in ("a", "b"):
            api.volume_create(m.VolumeCreate(name=name, replica=3, size="50MiB"))
        yield c


def info(c: Cluster, i: int) -> Any:
    assert c.ca is not None
    with tls_channel(c.nodes[i].address, c.ca / "gfsd") as ch:
        stub: Any = admin_pb2_grpc.AdminStub(ch)  # type: ignore[no-untyped-call]
        return stub.Info(admin_pb2.InfoRequest(), timeout=5)


def as_token(c: Cluster, token: str, method: str, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"http://{c.gfsd.address}{path}", headers=headers, timeout=10)


def test_create_scope_list_revoke_over_rest(cluster: Cluster) -> None:
    c = cluster
    with c.client() as api:
        issued = api.credential_create("web1", ["a"])
        # The certificate is a client certificate for `a` only, signed by the cluster CA.
        cert = x509.load_pem_x509_certificate(issued.cert.encode())
        ident = certs.identity_of(cert)
        assert (ident.role, ident.name, ident.volumes) == ("client", "web1", frozenset({"a"}))
        assert issued.fingerprint == certs.fingerprint(issued.cert.encode())
        assert issued.ca == (c.ca / certs.CA_CERT).read_text()  # type: ignore[operator]
        assert "PRIVATE KEY" in issued.key and issued.token
        listed = api.credentials()
        assert [(x.name, x.volumes, x.revoked) for x in listed] == [("web1", ["a"], None)]
        assert "token" not in listed[0].model_dump() and "key" not in listed[0].model_dump()
        assert api.credentials("a")[0].name == "web1" and api.credentials("b") == []

    # The token reads a's layout, nothing else.
    assert as_token(c, issued.token, "GET", "/v1/volumes/a").status_code == 200
    assert as_token(c, issued.token, "GET", "/v1/volumes/a/options").status_code == 200
    other = as_token(c, issued.token, "GET", "/v1/volumes/b")
    assert other.status_code == 403
    assert other.json()["code"] == "credential_scope"
    assert "not for volume b" in other.json()["message"]
    for method, path in [
        ("GET", "/v1/peers"),
        ("GET", "/v1/credentials"),
        ("POST", "/v1/volumes/a/stop"),
    ]:
        r = as_token(c, issued.token, method, path)
        assert r.status_code == 403, (method, path, r.text)
    # Only a hash is stored.
    assert issued.token not in (c.gfsd.log.read_text())

    with c.client() as api:
        revoked = api.credential_revoke("web1")
        assert revoked.revoked is not None
        assert api.credentials()[0].revoked is not None
        with pytest.raises(ApiError) as e:
            api.credential_revoke("web1")
        assert (e.value.status, e.value.code) == (409, "credential_revoked")
    gone = as_token(c, issued.token, "GET", "/v1/volumes/a")
    assert (gone.status_code, gone.json()["message"]) == (401, "credential web1 is revoked")
    # Every brick daemon enforces the list now, and keeps it private on disk.
    want = certs.revoked_digest({issued.fingerprint})
    for i in range(len(c.nodes)):
        assert info(c, i).revoked_digest == want
        f = c.roots[i] / ".gfs-revoked.json"
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert json.loads(f.read_text())["fingerprints"] == [issued.fingerprint]


def test_bad_input_is_refused_with_a_clear_error(cluster: Cluster) -> None:
    with c_api(cluster) as api:
        api.credential_create("dup", ["a", "b"])
        cases: list[tuple[Any, int, str]] = [
            ({"name": "bad/name", "volumes": ["a"]}, 400, "invalid_request"),
            ({"name": "x", "volumes": []}, 400, "invalid_request"),
            ({"name": "x", "volumes": ["no such"]}, 400, "invalid_request"),
            ({"name": "x"}, 400, "invalid_request"),
            ({"name": "x", "volumes": ["nosuch"]}, 404, "volume_not_found"),
            ({"name": "dup", "volumes": ["a"]}, 409, "credential_exists"),
        ]
        for body, status, code in cases:
            r = api.http.post("/v1/credentials", json=body)
            assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
        for method in ("GET", "DELETE"):
            r = api.http.request(method, "/v1/credentials/nosuch")
            assert (r.status_code, r.json()["code"]) == (404, "credential_not_found")
        assert [x.name for x in api.credentials()] == ["dup"]
    # A credential token is no admin token: it cannot issue or revoke credentials.
    with c_api(cluster) as api:
        token = api.credential_create("t", ["a"]).token
    r = httpx.post(
        f"http://{cluster.gfsd.address}/v1/credentials",
        json={"name": "y", "volumes": ["a"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 403


def c_api(c: Cluster) -> Any:
    return c.client()


def test_gfsd_without_a_ca_says_so(tmp_path: Path) -> None:
    g = Gfsd(tmp_path / "gfsd", tmp_path / "gfsd.log").start()
    try:
        r = httpx.post(
            f"http://{g.address}/v1/credentials",
            json={"name": "x", "volumes": ["a"]},
            headers={"Authorization": f"Bearer {g.token}"},
        )
        assert (r.status_code, r.json()["code"]) == (409, "no_ca")
        assert "--ca-dir" in r.json()["message"]
    finally:
        g.stop()
    bad = subprocess.run(
        [str(BIN / "gfsd"), "--state-dir", str(tmp_path / "s"), "--ca-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "no ca.crt" in bad.stderr and "Traceback" not in bad.stderr


def cli(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GFS_")}
    env |= {"GFS_SERVER": c.gfsd.address, "GFS_TOKEN": c.gfsd.token, "HOME": "/nonexistent"}
    return subprocess.run(
        [str(BIN / "gfs"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_cli_create_list_revoke(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "cred"
    r = cli(
        cluster, "volume", "credential", "create", "a", "b", "--name", "web2", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    assert f"credential={out}" in r.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {
        "ca.crt": 0o644,
        "tls.crt": 0o644,
        "tls.key": 0o600,
        "token": 0o600,
    }
    material = certs.load(out)  # a usable identity folder
    assert material.identity.volumes == frozenset({"a", "b"})
    listed = cli(cluster, "volume", "credential", "list", "b", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [x["name"] for x in json.loads(listed.stdout)] == ["web2"]
    table = cli(cluster, "volume", "credential", "list")
    assert "web2" in table.stdout and "valid" in table.stdout

    for args, code, text in [
        (["create", "a", "--name", "bad/name", "--out", str(tmp_path / "x")], 2, "name"),
        (["create", "a", "--name", "web2", "--out", str(out)], 1, "not an empty folder"),
        (["create", "a", "--name", "web2", "--out", str(tmp_path / "y")], 1, "exists"),
        (["create", "nosuch", "--name", "n", "--out", str(tmp_path / "z")], 1, "no volume"),
        (["revoke", "nosuch"], 1, "no credential"),
    ]:
        r = cli(cluster, "volume", "credential", *args)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert text in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # a refused create leaves no folder behind
    assert not (tmp_path / "y").exists() and not (tmp_path / "z").exists()

    r = cli(cluster, "volume", "credential", "revoke", "web2")
    assert r.returncode == 0 and "revoked" in r.stdout, r.stderr
    table = cli(cluster, "volume", "credential", "list")
    assert "revoked" in table.stdout


def test_a_daemon_down_during_revoke_gets_the_list_when_back(cluster: Cluster) -> None:
    c = cluster
    with c.client() as api:
        issued = api.credential_create("late", ["a"])
        c.nodes[0].stop()
        api.credential_revoke("late")  # succeeds: the record counts, the push is retried
    want = certs.revoked_digest({issued.fingerprint})
    assert info(c, 1).revoked_digest == want
    c.nodes[0].start()
    wait_for(lambda: info(c, 0).revoked_digest == want, DEADLINE, "revocations re-pushed")
    # kept across a restart of the daemon
    c.nodes[1].stop()
    c.nodes[1].start()
    assert info(c, 1).revoked_digest == want
