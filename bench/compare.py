"""Side by side: the same bounded workloads on gfs, GlusterFS, a pyfuse3 passthrough and
the local disk, in one run, interleaved per workload.

    bench/compare [--smoke | --quick] [--targets gfs,glusterfs,passthrough,local]
                  [--only WORKLOAD,...] [--seq-mib N] [--files N] ... [--out FILE]

Targets, all on this machine and the same disk:
- gfs: replica 3 from `gfs cluster up` (gfsd + three gfs-brickd), a volume of the
  default kind mounted with mount.fuse.gfs (default options);
- glusterfs: Debian's GlusterFS, replica 3, three bricks on this host (`force`), default
  volume options, mount -t glusterfs (bench/gluster.py);
- passthrough: bench/passthrough.py, a do-nothing pyfuse3 + trio filesystem over a
  local folder (the floor of any Python FUSE stack);
- local: a folder on the local disk.

Each workload runs on every target before the next starts, in an order that rotates
per workload; each is bounded in bytes or count and in time, and reads back what it
wrote (bench/workloads.py). "cold" workloads first remount the target and drop the
kernel's caches. Writes bench/results/compare.json and prints a table with the ratios
gfs/GlusterFS and gfs/passthrough (> 1: gfs is better; for times, the inverse ratio).
Everything it starts is stopped and unmounted on the way out, on failure and Ctrl-C too.
Needs root and /dev/fuse; installs fio and glusterfs-server with apt-get if missing.
Exit code 1 when a target or a workload failed (the table and JSON are written anyway).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import gluster as gl  # noqa: E402
from tests.procs import Mount, is_mounted, unmount  # noqa: E402

BIN = Path(sys.executable).parent
TIMES, NONE = "\u00d7", "\u2013"  # multiplication sign, en dash
DJANGO = "Django-5.1.4.tar.gz"
TARGETS = ("gfs", "glusterfs", "passthrough", "local")
LABELS = {
    "gfs": "gfs replica 3",
    "glusterfs": "GlusterFS replica 3",
    "passthrough": "pyfuse3 passthrough",
    "local": "local disk",
}


@dataclass(frozen=True)
class Workload:
    name: str
    cold: bool = False
    needs: tuple[str, ...] = ()
    two_mounts: bool = False


WORKLOADS = (
    Workload("seqwrite"),
    Workload("seqread", cold=True, needs=("seqwrite",)),
    Workload("randwrite"),
    Workload("randread", cold=True, needs=("seqwrite",)),
    Workload("create"),
    Workload("stat", cold=True, needs=("create",)),
    Workload("read", cold=True, needs=("create",)),
    Workload("ls", cold=True, needs=("create",)),
    Workload("unlink", needs=("create",)),
    Workload("dirs"),
    Workload("tar"),
    Workload("twomount", two_mounts=True),
)
BY_NAME = {w.name: w for w in WORKLOADS}

# metric -> (table label, "higher" or "lower" is better)
ROWS: dict[str, tuple[str, str]] = {
    "seq_write": ("sequential write {seq_mib} MiB, MB/s", "higher"),
    "seq_read_cold": ("sequential read, cold, MB/s", "higher"),
    "rand_write_4k": ("4 KiB random write, IOPS", "higher"),
    "rand_read_4k_cold": ("4 KiB random read, cold, IOPS", "higher"),
    "create": ("create {files} " + TIMES + " 4 KiB files in {dirs} dirs, files/s", "higher"),
    "stat_cold": ("stat, cold, /s", "higher"),
    "read_cold": ("open+read+close, cold, files/s", "higher"),
    "ls_l": ("ls -l, cold, entries/s", "higher"),
    "unlink": ("unlink, files/s", "higher"),
    "mkdir": ("mkdir ({dir_ops} dirs), /s", "higher"),
    "rename": ("rename (dirs), /s", "higher"),
    "rmdir": ("rmdir, /s", "higher"),
    "untar": ("untar {tar_name} ({tar_files:,} files, {tar_dirs:,} dirs), s", "lower"),
    "rm_rf": ("rm -rf that tree, s", "lower"),
    "two_mount": (
        "two mounts: {two_files} files written on one, stat+read on the other, files/s",
        "higher",
    ),
    "two_mount_lag": ("two mounts: close on one to checked on the other, p50 ms", "lower"),
}

SCALES: dict[str, dict[str, Any]] = {
    "smoke": {
        "seq_mib": 8,
        "rand_file_mib": 4,
        "rand_io_mib": 1,
        "files": 60,
        "dirs": 5,
        "dir_ops": 20,
        "two_files": 20,
        "tarball": "generated",
        "gen_files": 60,
        "time_limit": 30.0,
        "tar_time_limit": 60.0,
    },
    "quick": {
        "seq_mib": 128,
        "rand_file_mib": 32,
        "rand_io_mib": 4,
        "files": 500,
        "dirs": 50,
        "dir_ops": 100,
        "two_files": 100,
        "tarball": "django",
        "gen_files": 2000,
        "time_limit": 120.0,
        "tar_time_limit": 600.0,
    },
    "full": {
        "seq_mib": 1024,
        "rand_file_mib": 256,
        "rand_io_mib": 16,
        "files": 5000,
        "dirs": 50,
        "dir_ops": 1000,
        "two_files": 500,
        "tarball": "django",
        "gen_files": 5000,
        "time_limit": 300.0,
        "tar_time_limit": 1200.0,
    },
}


class SetupError(Exception):
    """A target could not be brought up."""


def say(msg: str) -> None:
    print(msg, flush=True)


def run(args: list[str], timeout: float = 120, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if p.returncode != 0:
        raise SetupError(
            f"{shlex.join(args)} failed ({p.returncode}): {(p.stderr or p.stdout).strip()[-500:]}"
        )
    return p.stdout


def drop_caches() -> None:
    """Cold: no page, dentry or inode cache left from what ran before (the whole host's)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


# -- targets ---------------------------------------------------------------------------


class Target:
    name = ""

    def __init__(self, base: Path) -> None:
        self.dir = base / self.name
        self.dir.mkdir()
        self.root = self.dir  # set by start()
        self.version = ""

    def start(self) -> None:
        raise NotImplementedError

    def remount(self) -> None:
        """Unmount and mount again, so that the client keeps nothing in its caches."""

    def second_mount(self) -> Path:
        """The root on an independent second mount of the same data."""
        return self.root

    def close(self) -> None:
        """Undo start(), whatever part of it ran."""


class LocalTarget(Target):
    name = "local"

    def start(self) -> None:
        self.root = self.dir / "root"
        self.root.mkdir()
        fs = run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(self.root)]).strip()
        self.version = f"{fs} (kernel {platform.release()})"


class PassthroughMount:
    def __init__(self, source: Path, mountpoint: Path, log: Path) -> None:
        self.source, self.mountpoint, self.log = source, mountpoint, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> PassthroughMount:
        self.mountpoint.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "bench.passthrough", str(self.source), str(self.mountpoint)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        end = time.monotonic() + timeout
        while not is_mounted(self.mountpoint):
            if self.proc.poll() is not None:
                raise SetupError(
                    f"passthrough exited ({self.proc.returncode}): {self.log.read_text()[-500:]}"
                )
            if time.monotonic() > end:
                raise SetupError(
                    f"passthrough did not mount {self.mountpoint} within {timeout:.0f} s"
                )
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        unmount(self.mountpoint)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class PassthroughTarget(Target):
    name = "passthrough"

    def start(self) -> None:
        import pyfuse3

        self.version = (
            f"bench/passthrough.py on pyfuse3 {pyfuse3.__version__}, trio {trio_version()}"
        )
        self.source = self.dir / "src"
        (self.source / "bench").mkdir(parents=True)
        self.mounts = [PassthroughMount(self.source, self.dir / "mnt", self.dir / "mnt.log")]
        self.mounts[0].start()
        self.root = self.dir / "mnt" / "bench"

    def remount(self) -> None:
        self.mounts[0].stop()
        self.mounts[0].start()

    def second_mount(self) -> Path:
        m = PassthroughMount(self.source, self.dir / "mnt2", self.dir / "mnt2.log")
        self.mounts.append(m)
        m.start()
        return self.dir / "mnt2" / "bench"

    def close(self) -> None:
        for m in reversed(getattr(self, "mounts", [])):
            m.stop()


def free_port_base(n: int) -> int:
    """A base port with the n ports from it free on 127.0.0.1."""
    for _ in range(50):
        base = random.randrange(30000, 60000, 10)
        ok = True
        for port in range(base, base + n):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise SetupError("no free range of ports on 127.0.0.1")


class GfsTarget(Target):
    name = "gfs"
    VOLUME = "cmp"

    def __init__(self, base: Path, size: str, extra: str = "") -> None:
        """`extra`: more mount options (e.g. write-behind=off, to compare)."""
        super().__init__(base)
        self.size = size
        self.extra = extra
        self.up = False
        self.mounts: list[Mount] = []

    def gfs(self, *args: str, timeout: float = 120) -> str:
        return run([str(BIN / "gfs"), *args], timeout=timeout, env=self.env)

    def start(self) -> None:
        self.env: dict[str, str] = {}
        cluster = self.dir / "cluster"
        for _ in range(5):
            base = free_port_base(4)
            p = subprocess.run(
                [
                    str(BIN / "gfs"),
                    "cluster",
                    "up",
                    "--dir",
                    str(cluster),
                    "--bricks",
                    "3",
                    "--port-base",
                    str(base),
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.up = True  # `down` is safe after a failed `up`, which cleans up itself
            if p.returncode == 0:
                break
            if "already in use" not in p.stderr:
                raise SetupError(f"gfs cluster up failed: {p.stderr.strip()[-500:]}")
        else:
            raise SetupError(f"gfs cluster up failed: {p.stderr.strip()[-500:]}")
        info = json.loads(p.stdout)
        self.api, token_file = info["api"], info["token_file"]
        self.env = {"GFS_SERVER": self.api, "GFS_TOKEN_FILE": token_file}
        self.gfs("volume", "create", self.VOLUME, "--replica", "3", "--size", self.size)
        self.gfs("volume", "start", self.VOLUME)
        # A mount presents a client certificate for the volume (the cluster runs mTLS).
        ca = info["tls_dir"]
        self.gfs(
            "certs", "issue", ca, "--role", "client", "--name", "bench", "--volume", self.VOLUME
        )
        self.options = f"token-file={token_file},tls-dir={ca}/bench"
        if self.extra:
            self.options += f",{self.extra}"
        self.root = self.mount("mnt") / "bench"
        self.root.mkdir()
        self.version = f"gfs {git_commit()}"

    def mount(self, name: str) -> Path:
        m = Mount(
            f"{self.api}:/{self.VOLUME}",
            self.dir / name,
            self.dir / f"{name}.log",
            self.options,
        )
        self.mounts.append(m)
        try:
            m.start(timeout=60)
        except (RuntimeError, TimeoutError) as e:
            raise SetupError(f"mount.fuse.gfs: {e}") from None
        return m.mountpoint

    def remount(self) -> None:
        m = self.mounts[0]
        m.stop()
        try:
            m.start(timeout=60)
        except (RuntimeError, TimeoutError) as e:
            raise SetupError(f"mount.fuse.gfs: {e}") from None

    def second_mount(self) -> Path:
        return self.mount("mnt2") / "bench"

    def close(self) -> None:
        for m in reversed(self.mounts):
            m.stop()
        if self.up:
            p = subprocess.run(
                [str(BIN / "gfs"), "cluster", "down", "--dir", str(self.dir / "cluster")],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if p.returncode != 0 and "no cluster recorded" not in p.stderr:
                say(f"cleanup: gfs cluster down: {p.stderr.strip()[-300:]}")


class GlusterTarget(Target):
    name = "glusterfs"

    def start(self) -> None:
        if gl.glusterd_running():
            raise SetupError(
                "a glusterd already listens on 127.0.0.1:24007 (not ours): stop it, "
                "or leave GlusterFS out with --targets"
            )
        self.g = gl.Gluster(self.dir, f"cmp{os.getpid()}", {})
        self.g.start()
        self.root = self.g.mnt / "bench"
        self.root.mkdir()
        self.version = run(["glusterfsd", "--version"]).splitlines()[0]

    def remount(self) -> None:
        self.g.unmount(self.g.mnt)
        self.g.mount(self.g.mnt)

    def second_mount(self) -> Path:
        return self.g.mount(self.dir / "mnt2") / "bench"

    def close(self) -> None:
        if hasattr(self, "g"):
            self.g.close()


# -- preparation -----------------------------------------------------------------------


def git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        p = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if p.returncode == 0:
            return p.stdout.strip()
    return "(not a git checkout)"


def ensure_packages(targets: list[str]) -> None:
    """fio, and GlusterFS when it is a target, from Debian's packages if missing."""
    need = [] if shutil.which("fio") else ["fio"]
    if "glusterfs" in targets and any(shutil.which(t) is None for t in gl.TOOLS):
        need += gl.PACKAGES
    if not need:
        return
    say(f"installing {' '.join(need)} (apt-get)")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], timeout=600, env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need], timeout=900, env=env)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(base) / "gfs-bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def django_sdist() -> Path:
    """Django 5.1.4's sdist (6,809 files, 3,233 dirs), fetched once with pip download."""
    path = cache_dir() / DJANGO
    if not path.exists():
        say(f"fetching {DJANGO} with pip download (once, into {path.parent})")
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "django==5.1.4",
                "-d",
                str(path.parent),
            ],
            timeout=600,
        )
    return path


def generated_tarball(where: Path, files: int) -> Path:
    """A source-like tree (nested packages, text files of 0.1-30 KiB), the same every time."""
    rnd = random.Random(42)
    top = where / "gen-src"
    dirs = [top]
    top.mkdir()
    words = [b"def", b"return", b"self", b"import", b"class", b"value", b"name", b"(x)"]
    for i in range(files):
        if rnd.random() < 0.3 or len(dirs) < 3:
            d = rnd.choice(dirs[-8:]) / f"pkg{len(dirs)}"
            d.mkdir()
            dirs.append(d)
        size = int(min(30_000, rnd.lognormvariate(8, 1)))
        body = b" ".join(rnd.choice(words) for _ in range(size // 5 + 1))[:size]
        (rnd.choice(dirs) / f"mod{i}.py").write_bytes(body)
    out = where / "gen-src.tar.gz"
    with tarfile.open(out, "w:gz") as t:
        t.add(top, arcname="gen-src")
    shutil.rmtree(top)
    return out


def manifest(tarball: Path, out: Path, sample: int = 50) -> dict[str, Any]:
    """What the extracted tree must hold: type and size of every entry, and the sha256
    of a sample of the files."""
    entries: dict[str, tuple[str, int]] = {}
    digests: dict[str, str] = {}
    with tarfile.open(tarball) as t:
        members = t.getmembers()
        regular = [m for m in members if m.isreg()]
        step = max(1, len(regular) // sample)
        picked = {m.name for m in regular[::step][:sample]}
        for m in members:
            name = os.path.normpath(m.name)
            if name == ".":
                continue
            parts = Path(name).parts
            for k in range(1, len(parts)):
                entries.setdefault(str(Path(*parts[:k])), ("d", 0))
            if m.isdir():
                entries[name] = ("d", 0)
            elif m.issym():
                entries[name] = ("l", 0)
            else:
                entries[name] = ("f", m.size)
                if m.name in picked:
                    f = t.extractfile(m)
                    assert f is not None
                    digests[name] = hashlib.sha256(f.read()).hexdigest()
    data = {"tarball": str(tarball), "entries": entries, "sample": digests}
    out.write_text(json.dumps(data))
    return data


# -- the run ---------------------------------------------------------------------------


@dataclass
class Run:
    params: dict[str, Any]
    targets: dict[str, Target]
    base: Path
    results: list[dict[str, Any]] = field(default_factory=list)
    target_errors: dict[str, str] = field(default_factory=dict)

    def one(self, w: Workload, t: Target, root2: Path | None) -> dict[str, Any]:
        limit = self.params["tar_time_limit" if w.name == "tar" else "time_limit"]
        state = self.base / f"state-{t.name}.json"
        cmd = [sys.executable, "-m", "bench.workloads", w.name, "--root", str(t.root)]
        cmd += ["--root2", str(root2 or t.root), "--state", str(state)]
        cmd += ["--params", json.dumps({**self.params, "time_limit": limit})]
        cmd += ["--time-limit", str(limit)]
        row: dict[str, Any] = {"workload": w.name, "target": t.name, "metrics": {}, "error": None}
        t0 = time.monotonic()
        # Its own process group, so that it goes with its fio, tar or ls on a timeout or
        # an interrupt: a leftover keeps a mount busy.
        p = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = p.communicate(timeout=limit * 2 + 120)
        except subprocess.TimeoutExpired:
            row["error"] = f"no answer within {limit * 2 + 120:.0f} s (a hung mount?); killed"
        finally:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.communicate()
        if row["error"] is None:
            if p.returncode != 0:
                lines = [ln for ln in stderr.splitlines() if ln.strip()]
                row["error"] = lines[-1] if lines else f"exit {p.returncode}"
            else:
                row["metrics"] = json.loads(stdout.strip().splitlines()[-1])
        row["wall_seconds"] = round(time.monotonic() - t0, 3)
        lag = row["metrics"].get("two_mount", {}).get("lag_p50_ms")
        if lag is not None:
            m = row["metrics"]["two_mount"]
            row["metrics"]["two_mount_lag"] = {
                "value": lag,
                "unit": "ms",
                "ops": m["ops"],
                "seconds": m["seconds"],
                "partial": m["partial"],
            }
        return row

    def workload(self, k: int, w: Workload) -> None:
        names = list(self.targets)
        order = names[k % len(names) :] + names[: k % len(names)]
        for name in order:
            t = self.targets[name]
            if name in self.target_errors:
                continue
            root2 = None
            t0 = time.monotonic()
            try:
                if w.cold:
                    t.remount()
                    drop_caches()
                if w.two_mounts:
                    root2 = t.second_mount()
            except (SetupError, TimeoutError, RuntimeError, OSError) as e:
                row = {"workload": w.name, "target": name, "metrics": {}}
                row["error"] = f"before the workload: {type(e).__name__}: {e}"
                self.results.append(row)
                say(f"{w.name:10} {name:12} FAILED {row['error']}")
                continue
            prep = time.monotonic() - t0
            row = self.one(w, t, root2)
            row["order"] = order.index(name)
            row["prep_seconds"] = round(prep, 3)
            self.results.append(row)
            if row["error"]:
                say(f"{w.name:10} {name:12} FAILED {row['error']}")
            for metric, m in row["metrics"].items():
                extra = " (partial: time limit)" if m["partial"] else ""
                say(
                    f"{w.name:10} {name:12} {metric:18} {fmt(m['value'])} {m['unit']}"
                    f" [{m['ops']} ops, {m['seconds']:.1f} s]{extra}"
                )


# -- output ----------------------------------------------------------------------------

METRICS_OF = {
    "seqwrite": ("seq_write",),
    "seqread": ("seq_read_cold",),
    "randwrite": ("rand_write_4k",),
    "randread": ("rand_read_4k_cold",),
    "create": ("create",),
    "stat": ("stat_cold",),
    "read": ("read_cold",),
    "ls": ("ls_l",),
    "unlink": ("unlink",),
    "dirs": ("mkdir", "rename", "rmdir"),
    "tar": ("untar", "rm_rf"),
    "twomount": ("two_mount", "two_mount_lag"),
}
WORKLOAD_OF = {m: w for w, ms in METRICS_OF.items() for m in ms}


def fmt(v: float | None) -> str:
    if v is None:
        return NONE
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(
    results: list[dict[str, Any]], params: dict[str, Any], targets: list[str], workloads: list[str]
) -> tuple[list[dict[str, Any]], str]:
    """Rows of figures per metric with the ratios, and the same as a Markdown table.
    A ratio > 1 means gfs is better: gfs's rate over the other's, or for times the
    other's time over gfs's."""
    got: dict[tuple[str, str], dict[str, Any]] = {}
    failed: set[tuple[str, str]] = set()  # (workload, target)
    for r in results:
        for metric, m in r["metrics"].items():
            got[(metric, r["target"])] = m
        if r.get("error"):
            failed.add((r["workload"], r["target"]))
    rows = []
    for metric, (label, better) in ROWS.items():
        if WORKLOAD_OF[metric] not in workloads:
            continue
        values = {t: got.get((metric, t)) for t in targets}
        row: dict[str, Any] = {
            "metric": metric,
            "label": label.format(**params),
            "better": better,
            "unit": next((m["unit"] for m in values.values() if m), None),
            "values": {t: (m["value"] if m else None) for t, m in values.items()},
            "partial": [t for t, m in values.items() if m and m["partial"]],
            "failed": [t for t in targets if (WORKLOAD_OF[metric], t) in failed],
            "ratios": {},
        }
        g = values.get("gfs")
        for other in ("glusterfs", "passthrough"):
            o = values.get(other)
            if not (g and o and g["value"] and o["value"]):
                continue
            if "entries_per_s" in g and "entries_per_s" in o:
                # a time cut short by the limit is only a bound: compare the rates
                r = g["entries_per_s"] / o["entries_per_s"]
            elif better == "higher":
                r = g["value"] / o["value"]
            else:
                r = o["value"] / g["value"]
            row["ratios"][other] = round(r, 3)
        rows.append(row)
    ratio_cols = [o for o in ("glusterfs", "passthrough") if o in targets and "gfs" in targets]
    head = ["workload", *(LABELS[t] for t in targets)]
    head += [f"gfs ÷ {'GlusterFS' if o == 'glusterfs' else 'passthrough'}" for o in ratio_cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["label"]]
        for t in targets:
            v = row["values"][t]
            if t in row["failed"]:
                cells.append("failed")
            else:
                cells.append(fmt(v) + ("*" if t in row["partial"] else ""))
        for o in ratio_cols:
            r = row["ratios"].get(o)
            cells.append(f"{r:.2f}{TIMES}" if r is not None else NONE)
        lines.append("| " + " | ".join(cells) + " |")
    return rows, "\n".join(lines)


def trio_version() -> str:
    import trio

    return str(trio.__version__)


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError, ValueError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    debian = ""
    with contextlib.suppress(OSError):
        debian = Path("/etc/debian_version").read_text().strip()
    fio = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        fio = subprocess.run(["fio", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_mib": mem,
        "kernel": platform.release(),
        "debian": debian,
        "python": platform.python_version(),
        "fio": fio,
        "loadavg_start": round(os.getloadavg()[0], 2),
    }


# -- main ------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="bench/compare",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: " + ", ".join(w.name for w in WORKLOADS),
    )
    scale = ap.add_mutually_exclusive_group()
    scale.add_argument(
        "--smoke",
        action="store_const",
        dest="scale",
        const="smoke",
        help="tiny sizes, a generated tarball: seconds per target (CI)",
    )
    scale.add_argument(
        "--quick", action="store_const", dest="scale", const="quick", help="moderate sizes"
    )
    ap.set_defaults(scale="full")
    ap.add_argument(
        "--targets", default=",".join(TARGETS), help="comma-separated, of: " + ", ".join(TARGETS)
    )
    ap.add_argument(
        "--only", default="", help="comma-separated workloads (what they need runs too)"
    )
    ap.add_argument("--seq-mib", type=int, help="sequential file size")
    ap.add_argument("--rand-file-mib", type=int, help="file size for random writes")
    ap.add_argument("--rand-io-mib", type=int, help="bytes per random write/read run")
    ap.add_argument("--files", type=int, help="small files to create")
    ap.add_argument("--dirs", type=int, help="directories the small files are spread over")
    ap.add_argument("--dir-ops", type=int, help="directories to mkdir, rename, rmdir")
    ap.add_argument("--two-files", type=int, help="files of the two-mount workload")
    ap.add_argument(
        "--tarball",
        help="'django' (Django 5.1.4 sdist, via pip download), "
        "'generated' (a source-like tree) or a path to a .tar[.gz]",
    )
    ap.add_argument("--gen-files", type=int, help="files in the generated tarball")
    ap.add_argument("--time-limit", type=float, help="seconds per workload per target")
    ap.add_argument("--tar-time-limit", type=float, help="seconds for the extraction per target")
    ap.add_argument(
        "--gfs-options", default="", help="more -o options of the gfs mount (write-behind=off)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/compare.json")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the run's folder goes (bricks, mounts, local target)",
    )
    a = ap.parse_args(argv)
    targets = [t for t in a.targets.split(",") if t]
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets or len(set(targets)) != len(targets):
        ap.error(f"--targets: {a.targets!r}: give each of {', '.join(TARGETS)} at most once")
    a.target_list = [t for t in TARGETS if t in targets]
    only = [w for w in a.only.split(",") if w]
    bad = [w for w in only if w not in BY_NAME]
    if bad:
        ap.error(f"--only: unknown workload(s) {', '.join(bad)}; known: {', '.join(BY_NAME)}")
    want = set(only) or set(BY_NAME)
    for w in list(want):
        want |= set(BY_NAME[w].needs)
    a.workload_list = [w.name for w in WORKLOADS if w.name in want]
    params = dict(SCALES[a.scale])
    for key in params:
        v = getattr(a, key, None)
        if v is not None:
            params[key] = v
    for key in (
        "seq_mib",
        "rand_file_mib",
        "rand_io_mib",
        "files",
        "dirs",
        "dir_ops",
        "two_files",
        "gen_files",
        "time_limit",
        "tar_time_limit",
    ):
        if params[key] <= 0:
            ap.error(f"--{key.replace('_', '-')} must be positive")
    if params["rand_io_mib"] > params["rand_file_mib"]:
        ap.error("--rand-io-mib cannot exceed --rand-file-mib")
    a.params = params
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        say("bench/compare: needs root, /dev/fuse and fusermount3 (it mounts FUSE filesystems)")
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, gl.on_signal)
    gl.set_deadline(7 * 24 * 3600)  # each wait of the GlusterFS setup has its own bound
    ensure_packages(a.target_list)
    params = a.params
    base = Path(tempfile.mkdtemp(prefix="gfs-compare-", dir=a.workdir))
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": shlex.join(["bench/compare", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "scale": a.scale,
        "params": params,
        "targets": {},
        "workloads": a.workload_list,
        "results": [],
        "complete": False,
    }
    targets: dict[str, Target] = {}
    status = 1
    started = time.monotonic()
    try:
        if "tar" in a.workload_list:
            kind = params["tarball"]
            tarball = (
                django_sdist()
                if kind == "django"
                else generated_tarball(base, params["gen_files"])
                if kind == "generated"
                else Path(kind).resolve()
            )
            if not tarball.is_file():
                raise SetupError(f"--tarball {kind}: no such file")
            m = manifest(tarball, base / "manifest.json")
            kinds = [k for k, _ in m["entries"].values()]
            params.update(
                manifest=str(base / "manifest.json"),
                tar_name=tarball.name,
                tar_files=kinds.count("f"),
                tar_dirs=kinds.count("d"),
            )
        need_mib = params["seq_mib"] + params["rand_file_mib"] + params["files"] // 100 + 512
        size = f"{math.ceil(need_mib * 2 / 1024)}GiB"
        for name in a.target_list:
            t: Target = (
                GfsTarget(base, size, a.gfs_options)
                if name == "gfs"
                else {
                    "glusterfs": GlusterTarget,
                    "passthrough": PassthroughTarget,
                    "local": LocalTarget,
                }[name](base)
            )
            targets[name] = t
        run_ = Run(params, targets, base)
        for name, t in targets.items():
            t0 = time.monotonic()
            try:
                t.start()
                out["targets"][name] = {
                    "label": LABELS[name],
                    "version": t.version,
                    "setup_seconds": round(time.monotonic() - t0, 1),
                }
                say(f"up: {LABELS[name]} ({t.version}) in {time.monotonic() - t0:.1f} s")
            except (SetupError, TimeoutError, RuntimeError, OSError) as e:
                run_.target_errors[name] = f"{type(e).__name__}: {e}"
                out["targets"][name] = {"label": LABELS[name], "error": run_.target_errors[name]}
                say(f"FAILED to bring up {LABELS[name]}: {e}")
        out["results"] = run_.results
        for k, wname in enumerate(a.workload_list):
            run_.workload(k, BY_NAME[wname])
        out["complete"] = True
        failures = sum(1 for r in run_.results if r.get("error")) + len(run_.target_errors)
        status = 1 if failures else 0
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    except SystemExit as e:  # SIGTERM or SIGHUP, from gl.on_signal
        say(str(e))
        status = 143
    except SetupError as e:
        say(f"bench/compare: {e}")
    finally:
        # A second Ctrl-C (or a TERM) must not cut the cleanup short.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        say("cleaning up (signals are ignored until it is done)")
        t0 = time.monotonic()
        for t in reversed(list(targets.values())):
            try:
                t.close()
            except Exception as e:  # cleanup goes on for the others
                say(f"cleanup {t.name}: {type(e).__name__}: {e}")
        left = [
            ln.split()[4]
            for ln in Path("/proc/self/mountinfo").read_text().splitlines()
            if ln.split()[4].startswith(str(base))
        ]
        if left:
            say(f"cleanup: still mounted, {base} kept: {', '.join(left)}")
        else:
            shutil.rmtree(base, ignore_errors=True)
        out["cleanup_seconds"] = round(time.monotonic() - t0, 1)
        out["machine"]["loadavg_end"] = round(os.getloadavg()[0], 2)
        out["seconds"] = round(time.monotonic() - started, 1)
        rows, md = table(out["results"], params, a.target_list, a.workload_list)
        out["table"] = rows
        out["table_markdown"] = md
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=1) + "\n")
        say("")
        say(md)
        say("")
        say(
            "> 1 in a ratio column: gfs is better (rates: gfs ÷ other; times: other ÷ gfs); "
            "* partial: the time limit cut it short (a time is then a lower bound and its "
            "ratio compares entries/s)"
        )
        for r in out["results"]:
            if r.get("error"):
                say(f"FAILED {r['workload']} on {r['target']}: {r['error']}")
        say(f"{a.out} written; {out['seconds']:.0f} s in all")
    return status


if __name__ == "__main__":
    sys.exit(main())
