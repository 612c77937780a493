"""Volume options auth.allow / auth.reject against clients on addresses of their own:
each mount runs in a network namespace made here (tests/netns.py), the daemons listen on
the bridge in the root namespace. A refused address cannot mount (one line, nothing
mounted), a mounted client refused by a live change gets EACCES, and can work again when
the rule goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gfs.api.client import ApiError
from tests.cluster import Cluster
from tests.netns import Net, demo_on, network
from tests.procs import Mount, is_mounted, wait_for

DEADLINE = 30


def client(c: Cluster, net: Net, i: int, tmp: Path) -> Mount:
    opts = f"token-file={c.gfsd.state / 'admin.token'},attr-timeout=0,entry-timeout=0"
    return Mount(
        f"{c.gfsd.address}:/demo", tmp / f"mnt{i}", tmp / f"mnt{i}.log", opts, wrap=net.wrap(i)
    )


def refused(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return True
    return False


def test_auth_rules_refuse_and_admit_client_addresses(tmp_path: Path) -> None:
    with network(2, prefix="10.231.7") as net, demo_on(net, tmp_path, in_namespaces=False) as c:
        a, b = net.node_ip(0), net.node_ip(1)
        with c.client() as api:
            with pytest.raises(ApiError) as e:
                api.volume_set("demo", {"auth.allow": "client.example.com"})
            assert e.value.code == "bad_option_value"
            api.volume_set("demo", {"auth.reject": b})
        # b cannot mount: one line naming the refusal, nothing mounted
        mb = client(c, net, 1, tmp_path)
        with pytest.raises(RuntimeError, match="refused this client"):
            mb.start()
        assert not is_mounted(mb.mountpoint)
        ma = client(c, net, 0, tmp_path).start()
        try:
            f = ma.mountpoint / "f"
            f.write_bytes(b"written from a")
            # live: now a is refused and b allowed
            with c.client() as api:
                api.volume_set("demo", {"auth.reject": a})
            wait_for(lambda: refused(f), DEADLINE, "a's reads refused")
            with pytest.raises(PermissionError):
                (ma.mountpoint / "g").write_bytes(b"must not land")
            mb = client(c, net, 1, tmp_path).start()
            try:
                assert (mb.mountpoint / "f").read_bytes() == b"written from a"
                assert not (mb.mountpoint / "g").exists()
                # allow names only b: a stays out even with no reject rule
                with c.client() as api:
                    api.volume_set("demo", {"auth.allow": f"{b}/32", "auth.reject": ""})
                assert refused(f)
                assert (mb.mountpoint / "f").read_bytes() == b"written from a"
                with c.client() as api:
                    api.volume_reset("demo", "auth.allow")
                wait_for(lambda: not refused(f), DEADLINE, "a served again")
                assert f.read_bytes() == b"written from a"
            finally:
                mb.stop()
        finally:
            ma.stop()
        for root in c.roots:
            assert not list(root.glob("*/g")), "a refused write reached a brick"
