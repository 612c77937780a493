"""Test hosts for the deployment test: network namespaces joined by a bridge, an sshd in each.

Layout (nothing is added to the machine's own network namespace):

    ns <prefix>-ctl : bridge gfsbr0 10.213.0.254/24, the Ansible controller runs here
    ns <prefix>-h1  : eth0 10.213.0.1/24, sshd, its own hostname (UTS namespace)
    ...

The hosts share the machine's filesystem and mount namespace (`nsenter --net` only), so
their FUSE mounts are visible to the test; each host gets its own folder for paths.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.procs import wait_for

SUBNET = "10.213.0"
PREFIX = "gfsdeploy"
BRIDGE = "gfsbr0"
STOP_TIMEOUT = 10.0


def run(*args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def in_ns(ns: str, *args: str) -> list[str]:
    """A command line that runs `args` in network namespace `ns` (and nothing else apart)."""
    return ["nsenter", f"--net=/run/netns/{ns}", "--", *args]


def netns_pids(ns: str) -> list[int]:
    r = run("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split()] if r.returncode == 0 else []


def kill_netns_processes(ns: str) -> None:
    """TERM, then KILL, every process inside namespace `ns` (all of them are ours)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = netns_pids(ns)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while netns_pids(ns) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not netns_pids(ns):
            return


def delete_netns(ns: str) -> None:
    kill_netns_processes(ns)
    run("ip", "netns", "delete", ns, check=False)


def remove_stale() -> None:
    """Namespaces left by a test run that was killed (its pid is in the name, and gone)."""
    r = run("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        ours = len(parts) == 3 and parts[0] == PREFIX and parts[1].isdigit()
        if ours and not Path(f"/proc/{parts[1]}").exists():
            delete_netns(name)


@dataclass
class Host:
    name: str  # inventory name, also its hostname
    ns: str
    address: str
    dir: Path
    sshd: subprocess.Popen[bytes] | None = None


@dataclass
class DeployNet:
    """Three (or `count`) hosts reachable over SSH from the controller namespace."""

    root: Path
    count: int = 3
    ctl: str = ""
    hosts: list[Host] = field(default_factory=list)
    key: Path = Path()
    known_hosts: Path = Path()
    made_run_sshd: bool = False

    def __post_init__(self) -> None:
        tag = f"{PREFIX}-{os.getpid()}"
        self.ctl = f"{tag}-ctl"
        self.hosts = [
            Host(f"node{i}", f"{tag}-h{i}", f"{SUBNET}.{i}", self.root / f"node{i}")
            for i in range(1, self.count + 1)
        ]
        self.key = self.root / "ssh" / "id_ed25519"
        self.known_hosts = self.root / "ssh" / "known_hosts"

    def up(self) -> DeployNet:
        remove_stale()
        run("ip", "netns", "add", self.ctl)
        ctl = ["ip", "-n", self.ctl]
        run(*ctl, "link", "set", "lo", "up")
        run(*ctl, "link", "add", BRIDGE, "type", "bridge")
        run(*ctl, "addr", "add", f"{SUBNET}.254/24", "dev", BRIDGE)
        run(*ctl, "link", "set", BRIDGE, "up")
        for i, h in enumerate(self.hosts, 1):
            run("ip", "netns", "add", h.ns)
            # Both ends are made inside the namespaces: the machine's own never sees them.
            run(
                "ip", "link", "add", "eth0", "netns", h.ns, "type", "veth",
                "peer", "name", f"v{i}", "netns", self.ctl,
            )  # fmt: skip
            run(*ctl, "link", "set", f"v{i}", "master", BRIDGE, "up")
            hn = ["ip", "-n", h.ns]
            run(*hn, "link", "set", "lo", "up")
            run(*hn, "addr", "add", f"{h.address}/24", "dev", "eth0")
            run(*hn, "link", "set", "eth0", "up")
        self._start_sshds()
        return self

    def _start_sshds(self) -> None:
        ssh = self.key.parent
        ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        (ssh / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        if not Path("/run/sshd").exists():  # sshd's privilege separation folder
            Path("/run/sshd").mkdir(mode=0o755)
            self.made_run_sshd = True
        known = []
        for h in self.hosts:
            h.dir.mkdir(parents=True, exist_ok=True)
            hostkey = h.dir / "ssh_host_ed25519_key"
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey))
            known.append(f"{h.address} {hostkey.with_suffix('.pub').read_text().strip()}")
            cfg = h.dir / "sshd_config"
            cfg.write_text(
                f"ListenAddress {h.address}:22\n"
                f"HostKey {hostkey}\n"
                f"AuthorizedKeysFile {ssh / 'authorized_keys'}\n"
                f"PidFile {h.dir / 'sshd.pid'}\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                "MaxSessions 50\nMaxStartups 50\nLogLevel ERROR\n"
                "Subsystem sftp internal-sftp\n"
            )
            log = open(h.dir / "sshd.log", "ab")  # noqa: SIM115 (the child keeps it)
            # nsenter and unshare exec, so the pid is sshd's own.
            h.sshd = subprocess.Popen(
                in_ns(
                    h.ns, "unshare", "--uts", "--", "sh", "-c",
                    'hostname "$0" && exec /usr/sbin/sshd -D -e -f "$1"', h.name, str(cfg),
                ),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
            log.close()
        self.known_hosts.write_text("\n".join(known) + "\n")
        for h in self.hosts:
            wait_for(lambda h=h: self._ssh_ok(h), 30, f"sshd of {h.name} ({h.dir / 'sshd.log'})")

    def ssh_args(self) -> list[str]:
        return [
            "-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
        ]  # fmt: skip

    def _ssh_ok(self, h: Host) -> bool:
        assert h.sshd is not None
        if h.sshd.poll() is not None:
            raise RuntimeError(f"sshd of {h.name} exited: {(h.dir / 'sshd.log').read_text()}")
        r = subprocess.run(
            in_ns(self.ctl, "ssh", *self.ssh_args(), f"root@{h.address}", "hostname"),
            capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return r.returncode == 0 and r.stdout.strip() == h.name

    def down(self) -> None:
        """Remove everything up() made; safe to call after a partial up()."""
        for h in self.hosts:
            delete_netns(h.ns)
            if h.sshd is not None:
                h.sshd.wait(STOP_TIMEOUT)
        delete_netns(self.ctl)
        if self.made_run_sshd:
            Path("/run/sshd").rmdir()
