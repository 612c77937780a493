"""The playbook deploys a real three-node cluster over SSH, idempotently.

Three network namespaces with an sshd each stand in for three fresh hosts (see
hosts.py); `ansible-playbook site.yml` runs against them from a fourth. A file written
through the mount on one host is read through the mounts on the others, and a second
run of the playbook must report no change.

SQLite keeps gfsd's state here: one gfsd is all this test deploys, and the PostgreSQL
role is covered by ansible-lint and the syntax check (a real PostgreSQL in a namespace
would mean driving the machine's own Debian cluster).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy import wheels
from tests.deploy.hosts import DeployNet, in_ns
from tests.procs import have_fuse, is_mounted, wait_for

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
VOLUME = "vol0"
FIRST_RUN_TIMEOUT = 420
RERUN_TIMEOUT = 240

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("sshd", path="/usr/sbin") or not have_fuse(),
    reason="needs root, /dev/fuse and openssh-server (scripts/install.sh --test)",
)


def inventory(net: DeployNet, wheel: Path, house: Path) -> dict[str, object]:
    hosts = {h.name: {"ansible_host": h.address, "gfs_prefix": str(h.dir)} for h in net.hosts}
    names = dict.fromkeys(hosts, None)
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_become": False,
                "ansible_python_interpreter": "/usr/bin/python3",
                "ansible_ssh_private_key_file": str(net.key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={net.known_hosts} "
                "-o StrictHostKeyChecking=yes",
                # No systemd here, and the hosts share one filesystem, /sbin and /etc.
                "gfs_service_manager": "daemon",
                "gfs_install_from": "wheel",
                "gfs_package": str(wheel),
                "gfs_wheelhouse": str(house),
                "gfs_apt_update_cache": False,
                "gfs_bin_link_dir": "",
                "gfs_client_helper": "{{ gfs_venv }}/bin/mount.fuse.gfs",
                "gfs_client_fstab": "{{ gfs_prefix }}/etc/fstab",
                "gfsd_peer_check_interval": 1,
                "gfsd_volumes": [{"name": VOLUME, "replica": 3, "size": "64MiB"}],
                "gfs_client_mounts": [{"volume": VOLUME, "path": "{{ gfs_prefix }}/mnt/vol0"}],
            },
            "children": {
                "gfs_mgmt": {"hosts": {net.hosts[0].name: None}},
                "gfs_bricks": {"hosts": hosts},
                "gfs_clients": {"hosts": names},
            },
        }
    }


def playbook(net: DeployNet, inv: Path, log: Path, timeout: float) -> dict[str, dict[str, int]]:
    """Run site.yml from the controller namespace; the PLAY RECAP counts per host."""
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_HOME": str(net.root / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(net.root / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(net.root / "ansible-remote"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(net.root / "cp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    with open(log, "w") as out:
        r = subprocess.run(
            in_ns(net.ctl, str(BIN / "ansible-playbook"), "-i", str(inv), str(ANSIBLE / "site.yml")),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            timeout=timeout, cwd=ANSIBLE,
        )  # fmt: skip
    text = log.read_text()
    fatal = "\n".join(re.findall(r"^(?:fatal|failed): .*$", text, re.M))
    assert r.returncode == 0, f"ansible-playbook failed ({r.returncode}, log {log}):\n{fatal}"
    recap = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", text, re.M):
        recap[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    assert set(recap) == {h.name for h in net.hosts}, text[-3000:]
    return recap


def unmount_all(net: DeployNet) -> None:
    for h in net.hosts:
        mnt = h.dir / "mnt" / VOLUME
        if mnt.exists() and is_mounted(mnt):
            r = subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


@pytest.fixture
def net() -> Iterator[DeployNet]:
    root = Path(tempfile.mkdtemp(prefix="gfs-deploy-"))
    n = DeployNet(root)
    try:
        n.up()
        yield n
    finally:
        try:
            unmount_all(n)
        finally:
            n.down()  # every process in the namespaces, then the namespaces
            if not any(is_mounted(h.dir / "mnt" / VOLUME) for h in n.hosts if h.dir.exists()):
                shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(900)
def test_site_yml_deploys_a_cluster(net: DeployNet, tmp_path: Path) -> None:
    started = time.monotonic()
    house = wheels.wheelhouse()
    wheel = wheels.gfs_wheel(net.root / "dist")
    inv = net.root / "hosts.yml"
    inv.write_text(json.dumps(inventory(net, wheel, house), indent=1))  # JSON is YAML

    first = playbook(net, inv, tmp_path / "run1.log", FIRST_RUN_TIMEOUT)
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in first.values()), first
    assert all(c["changed"] > 0 for c in first.values()), first
    first_done = time.monotonic()

    mounts = [h.dir / "mnt" / VOLUME for h in net.hosts]
    assert all(is_mounted(m) for m in mounts)
    fstab = (net.hosts[1].dir / "etc" / "fstab").read_text()
    assert "_netdev" in fstab and f":/{VOLUME} {mounts[1]} fuse " in fstab
    payload = os.urandom(300_000)
    (mounts[0] / "hello.bin").write_bytes(payload)
    (mounts[0] / "dir").mkdir()
    (mounts[0] / "dir" / "note.txt").write_text("written on node1\n")
    for m in mounts[1:]:
        assert (m / "hello.bin").read_bytes() == payload
        assert (m / "dir" / "note.txt").read_text() == "written on node1\n"
    # and back: written on node3, read on node1
    (mounts[2] / "back.txt").write_text("from node3\n")
    wait_for(lambda: (mounts[0] / "back.txt").exists(), 10, "back.txt on node1")
    assert (mounts[0] / "back.txt").read_text() == "from node3\n"

    # The hosts run the patched pyfuse3 from the wheelhouse: a flock on node1's mount
    # excludes node2's (a plain pyfuse3 keeps locks local to one mount).
    with open(mounts[0] / "hello.bin", "rb") as held, open(mounts[1] / "hello.bin", "rb") as other:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(held, fcntl.LOCK_UN)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)

    # Every replica holds the file (the data sits under the brick roots as plain files).
    copies = list(net.root.glob("node*/var/lib/gfs/bricks/*/hello.bin"))
    assert len(copies) == 3 and all(c.read_bytes() == payload for c in copies), copies

    second = playbook(net, inv, tmp_path / "run2.log", RERUN_TIMEOUT)
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in second.values()), (
        second,
        re.findall(r"^changed: .*$", (tmp_path / "run2.log").read_text(), re.M),
    )
    assert (mounts[1] / "hello.bin").read_bytes() == payload
    print(
        f"deploy: first run {first_done - started:.0f}s, "
        f"second run {time.monotonic() - first_done:.0f}s"
    )
