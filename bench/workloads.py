"""The workloads of bench/compare, one per call, each in its own process.

    python -m bench.workloads NAME --root DIR [--root2 DIR] --state FILE
        --params JSON --time-limit SECONDS

A workload runs in DIR (a folder on the target), stops by itself at the time limit
(its figures then say `partial`), checks what it wrote by reading it back, and prints
one JSON object {metric: {...}} as its last line; any failure, a wrong byte read back
included, exits 1 with a one-line reason on stderr. FILE (on local disk) carries what
one workload leaves for the next (bytes written, files created) on the same target.
A separate process per call keeps a hung mount from hanging the run: the caller kills
it after the limit plus a grace period.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_SIZE = 4096


class VerifyError(Exception):
    """What was read back is not what was written."""


@dataclass
class Ctx:
    root: Path
    root2: Path
    state_file: Path
    params: dict[str, Any]
    deadline: float
    state: dict[str, Any] = field(default_factory=dict)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state))


Metrics = dict[str, dict[str, Any]]


def metric(
    value: float, unit: str, ops: int, seconds: float, partial: bool, **extra: Any
) -> dict[str, Any]:
    return {
        "value": value,
        "unit": unit,
        "ops": ops,
        "seconds": seconds,
        "partial": partial,
        **extra,
    }


def rate(ops: int, seconds: float, unit: str, partial: bool, **extra: Any) -> dict[str, Any]:
    return metric(ops / seconds if seconds > 0 else 0.0, unit, ops, seconds, partial, **extra)


# -- fio -------------------------------------------------------------------------------


def fio(ctx: Ctx, name: str, path: Path, args: list[str]) -> dict[str, Any]:
    """One fio job; its JSON report. fio's own --runtime bounds it; the process timeout
    is only a backstop."""
    runtime = max(1, int(ctx.left()))
    cmd = [
        "fio",
        f"--name={name}",
        f"--filename={path}",
        "--ioengine=psync",
        "--iodepth=1",
        "--numjobs=1",
        "--fallocate=none",
        "--verify_state_save=0",  # no state files left in the working directory
        f"--runtime={runtime}",
        "--output-format=json",
        *args,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=runtime * 3 + 60)
    try:
        report = json.loads(p.stdout[p.stdout.index("{") :])
    except ValueError:
        report = None
    if p.returncode != 0 or report is None:
        lines = [ln for ln in (p.stderr + p.stdout).splitlines() if ln.strip()]
        reason = "; ".join(lines[-4:]) or f"exit {p.returncode}"
        if "verify" in reason:
            raise VerifyError(f"fio {name}: {reason}")
        raise RuntimeError(f"fio {name} failed: {reason}")
    job: dict[str, Any] = report["jobs"][0]
    if job.get("error"):
        raise RuntimeError(f"fio {name}: error {job['error']}: {p.stderr.strip()[-300:]}")
    return job


def seqwrite(ctx: Ctx) -> Metrics:
    size = ctx.params["seq_mib"] << 20
    path = ctx.root / "seq.dat"
    # A crc32c header every 4 KiB, so that the sequential and the random reads can check
    # every block they read.
    job = fio(
        ctx,
        "seqwrite",
        path,
        [
            "--rw=write",
            "--bs=1M",
            f"--size={size}",
            "--verify=crc32c",
            "--verify_interval=4096",
            "--do_verify=0",
            "--end_fsync=1",
        ],
    )
    w = job["write"]
    done = int(w["io_bytes"])
    ctx.state["seq_bytes"] = done
    secs = w["runtime"] / 1000
    partial = done < size
    return {"seq_write": metric(w["bw_bytes"] / 1e6, "MB/s", done >> 20, secs, partial)}


def seq_bytes(ctx: Ctx) -> int:
    n = int(ctx.state.get("seq_bytes", 0))
    if n < 1 << 20:
        raise RuntimeError("no file from seqwrite to read")
    return n


def seqread(ctx: Ctx) -> Metrics:
    size = seq_bytes(ctx)
    job = fio(
        ctx,
        "seqread",
        ctx.root / "seq.dat",
        ["--rw=read", "--bs=1M", f"--size={size}", "--verify=crc32c", "--verify_interval=4096"],
    )
    r = job["read"]
    done = int(r["io_bytes"])
    return {
        "seq_read_cold": metric(
            r["bw_bytes"] / 1e6, "MB/s", done >> 20, r["runtime"] / 1000, done < size
        )
    }


def randwrite(ctx: Ctx) -> Metrics:
    size = ctx.params["rand_file_mib"] << 20
    io = ctx.params["rand_io_mib"] << 20
    # Random writes rewrite blocks of an existing file, as a database does. The file is
    # laid out here in 1 MiB writes (untimed): fio would lay it out in 4 KiB writes.
    path = ctx.root / "rand.dat"
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(block)
    # Written blocks are read back and checked.
    job = fio(
        ctx,
        "randwrite",
        path,
        [
            "--rw=randwrite",
            "--bs=4k",
            f"--size={size}",
            f"--io_size={io}",
            "--overwrite=1",
            "--verify=crc32c",
            "--end_fsync=1",
        ],
    )
    w = job["write"]
    ios = int(w["total_ios"])
    return {"rand_write_4k": metric(w["iops"], "IOPS", ios, w["runtime"] / 1000, ios * 4096 < io)}


def randread(ctx: Ctx) -> Metrics:
    size = seq_bytes(ctx)
    io = min(ctx.params["rand_io_mib"] << 20, size)
    job = fio(
        ctx,
        "randread",
        ctx.root / "seq.dat",
        ["--rw=randread", "--bs=4k", f"--size={size}", f"--io_size={io}", "--verify=crc32c"],
    )
    r = job["read"]
    ios = int(r["total_ios"])
    return {
        "rand_read_4k_cold": metric(r["iops"], "IOPS", ios, r["runtime"] / 1000, ios * 4096 < io)
    }


# -- small files -----------------------------------------------------------------------


def content(i: int) -> bytes:
    return b"%08d" % i * (FILE_SIZE // 8)


def small_dirs(ctx: Ctx) -> list[Path]:
    return [ctx.root / "small" / f"d{k:02d}" for k in range(ctx.params["dirs"])]


def small_path(dirs: list[Path], i: int) -> Path:
    return dirs[i % len(dirs)] / f"f{i:06d}"


def created(ctx: Ctx) -> int:
    n = int(ctx.state.get("files", 0))
    if not n:
        raise RuntimeError("no files from create")
    return n


def timed_loop(ctx: Ctx, n: int, op: Callable[[int], None]) -> tuple[int, float, bool]:
    """op(0..n-1) until done or the deadline; (ops done, seconds, partial)."""
    t0 = time.perf_counter()
    for i in range(n):
        if ctx.over():
            return i, time.perf_counter() - t0, True
        op(i)
    return n, time.perf_counter() - t0, False


def create(ctx: Ctx) -> Metrics:
    dirs = small_dirs(ctx)
    for d in dirs:
        d.mkdir(parents=True)

    def one(i: int) -> None:
        fd = os.open(small_path(dirs, i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, content(i))
        finally:
            os.close(fd)

    done, secs, partial = timed_loop(ctx, ctx.params["files"], one)
    ctx.state["files"] = done
    return {"create": rate(done, secs, "files/s", partial)}


def stat_files(ctx: Ctx) -> Metrics:
    dirs, n = small_dirs(ctx), created(ctx)

    def one(i: int) -> None:
        st = os.stat(small_path(dirs, i))
        if st.st_size != FILE_SIZE:
            raise VerifyError(f"{small_path(dirs, i)}: size {st.st_size}, wrote {FILE_SIZE}")

    done, secs, partial = timed_loop(ctx, n, one)
    return {"stat_cold": rate(done, secs, "stats/s", partial)}


def read_files(ctx: Ctx) -> Metrics:
    dirs, n = small_dirs(ctx), created(ctx)

    def one(i: int) -> None:
        fd = os.open(small_path(dirs, i), os.O_RDONLY)
        try:
            data = os.read(fd, 2 * FILE_SIZE)
        finally:
            os.close(fd)
        if data != content(i):
            raise VerifyError(f"{small_path(dirs, i)}: read {len(data)} bytes, not as written")

    done, secs, partial = timed_loop(ctx, n, one)
    return {"read_cold": rate(done, secs, "files/s", partial)}


def ls_l(ctx: Ctx) -> Metrics:
    dirs, n = small_dirs(ctx), created(ctx)
    env = {**os.environ, "LC_ALL": "C"}
    t0 = time.perf_counter()
    p = subprocess.run(
        ["ls", "-l", *map(str, dirs)],
        capture_output=True,
        text=True,
        timeout=max(1.0, ctx.left()),
        env=env,
    )
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"ls -l failed: {p.stderr.strip()[-300:]}")
    entries = [
        ln
        for ln in p.stdout.splitlines()
        if ln and not ln.startswith("total ") and not ln.endswith(":")
    ]
    if len(entries) != n or not all(ln.split()[4] == str(FILE_SIZE) for ln in entries):
        raise VerifyError(f"ls -l listed {len(entries)} files of {n} (or wrong sizes)")
    return {"ls_l": rate(n, secs, "entries/s", False)}


def unlink(ctx: Ctx) -> Metrics:
    dirs, n = small_dirs(ctx), created(ctx)
    done, secs, partial = timed_loop(ctx, n, lambda i: os.unlink(small_path(dirs, i)))
    if not partial:
        for d in dirs:
            left = os.listdir(d)
            if left:
                raise VerifyError(f"{d}: {len(left)} entries left after unlink, e.g. {left[0]}")
            d.rmdir()
        (ctx.root / "small").rmdir()
    ctx.state["files"] = 0
    return {"unlink": rate(done, secs, "files/s", partial)}


def dirs_ops(ctx: Ctx) -> Metrics:
    top = ctx.root / "dirs"
    top.mkdir()
    n = ctx.params["dir_ops"]
    out: Metrics = {}
    done, secs, partial = timed_loop(ctx, n, lambda i: (top / f"m{i:05d}").mkdir())
    out["mkdir"] = rate(done, secs, "dirs/s", partial)
    made = done
    done, secs, partial = timed_loop(
        ctx, made, lambda i: (top / f"m{i:05d}").rename(top / f"r{i:05d}")
    )
    out["rename"] = rate(done, secs, "renames/s", partial)
    renamed = done
    want = sorted(
        [f"r{i:05d}" for i in range(renamed)] + [f"m{i:05d}" for i in range(renamed, made)]
    )
    got = sorted(os.listdir(top))
    if got != want:
        raise VerifyError(f"{top}: {len(got)} entries after rename, want {len(want)}")
    names = want
    done, secs, partial = timed_loop(ctx, len(names), lambda i: (top / names[i]).rmdir())
    out["rmdir"] = rate(done, secs, "dirs/s", partial)
    left = os.listdir(top)
    if len(left) != len(names) - done:
        raise VerifyError(f"{top}: {len(left)} entries left after rmdir, want {len(names) - done}")
    if not left:
        top.rmdir()
    return out


# -- source tarball --------------------------------------------------------------------


def check_tree(where: Path, manifest: dict[str, Any]) -> None:
    """The extracted tree has every entry of the tarball with its type and size, and the
    sampled files have its bytes."""
    found: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(where):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"
            found[os.path.relpath(p, where)] = (kind, st.st_size if kind == "f" else 0)
    want = {k: (v[0], v[1]) for k, v in manifest["entries"].items()}
    if found != want:
        missing = sorted(set(want) - set(found))[:3]
        extra = sorted(set(found) - set(want))[:3]
        wrong = sorted(k for k in set(want) & set(found) if want[k] != found[k])[:3]
        raise VerifyError(
            f"extracted tree differs from the tarball: {len(found)} entries, want "
            f"{len(want)}; missing {missing}, unexpected {extra}, wrong type/size {wrong}"
        )
    for rel, digest in manifest["sample"].items():
        if hashlib.sha256((where / rel).read_bytes()).hexdigest() != digest:
            raise VerifyError(f"{rel}: extracted bytes differ from the tarball")


def untar(ctx: Ctx) -> Metrics:
    manifest = json.loads(Path(ctx.params["manifest"]).read_text())
    n = len(manifest["entries"])
    where = ctx.root / "tar"
    where.mkdir()
    t0 = time.perf_counter()
    tar = subprocess.Popen(
        ["tar", "-xf", manifest["tarball"], "-C", str(where)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = tar.communicate(timeout=max(1.0, ctx.left()))
        partial = False
    except subprocess.TimeoutExpired:
        tar.kill()
        _, err = tar.communicate()
        partial = True
    secs = time.perf_counter() - t0
    out: Metrics = {}
    if partial:
        made = sum(len(d) + len(f) for _, d, f in os.walk(where))
        out["untar"] = metric(secs, "s", made, secs, True, entries_per_s=made / secs)
    else:
        if tar.returncode != 0:
            raise RuntimeError(f"tar -x failed: {err.strip()[-300:]}")
        check_tree(where, manifest)
        out["untar"] = metric(secs, "s", n, secs, False, entries_per_s=n / secs)
    # rm -rf always gets a bound of its own: it also cleans up after a partial extraction.
    t0 = time.perf_counter()
    p = subprocess.run(
        ["rm", "-rf", str(where)],
        capture_output=True,
        text=True,
        timeout=max(60.0, float(ctx.params["time_limit"])),
    )
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"rm -rf failed: {p.stderr.strip()[-300:]}")
    if where.exists():
        raise VerifyError(f"{where} still exists after rm -rf")
    removed = out["untar"]["ops"]
    out["rm_rf"] = metric(secs, "s", removed, secs, partial, entries_per_s=removed / secs)
    return out


# -- two mounts ------------------------------------------------------------------------


def two_mounts(ctx: Ctx) -> Metrics:
    """One mount writes files, the other waits for each (stat until it has its size),
    reads it and checks its bytes. The figure is files/s as seen by the reader; the lag
    is from the writer's close to the reader's check."""
    n = ctx.params["two_files"]
    a, b = ctx.root / "two", ctx.root2 / "two"
    a.mkdir()
    closed: list[float] = [0.0] * n
    seen: list[float] = []
    stale = 0
    failure: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for i in range(n):
                if stop.is_set():
                    return
                fd = os.open(a / f"f{i:06d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, content(i))
                finally:
                    os.close(fd)
                closed[i] = time.perf_counter()
        except BaseException as e:
            failure.append(e)
            stop.set()

    t0 = time.perf_counter()
    w = threading.Thread(target=writer, daemon=True)
    w.start()
    partial = False
    try:
        while not b.is_dir():
            if ctx.over() or stop.is_set():
                raise RuntimeError(f"{b} never appeared on the second mount")
            time.sleep(0.002)
        for i in range(n):
            p = b / f"f{i:06d}"
            while True:
                if ctx.over() or stop.is_set():
                    partial = True
                    break
                try:
                    if os.stat(p).st_size == FILE_SIZE:
                        if p.read_bytes() == content(i):
                            break
                        stale += 1
                except FileNotFoundError:
                    pass
                time.sleep(0.002)
            if partial:
                break
            seen.append(time.perf_counter())
    finally:
        stop.set()
        w.join(60)
    if failure:
        raise RuntimeError(f"writer on the first mount: {failure[0]!r}")
    if not seen:
        raise VerifyError("the second mount never saw a complete file")
    lags = [max(0.0, s - c) * 1e3 for s, c in zip(seen, closed, strict=False) if c]
    secs = seen[-1] - t0
    return {
        "two_mount": rate(
            len(seen),
            secs,
            "files/s",
            partial,
            lag_p50_ms=statistics.median(lags) if lags else None,
            lag_max_ms=max(lags) if lags else None,
            stale_reads=stale,
        )
    }


WORKLOADS: dict[str, Callable[[Ctx], Metrics]] = {
    "seqwrite": seqwrite,
    "seqread": seqread,
    "randwrite": randwrite,
    "randread": randread,
    "create": create,
    "stat": stat_files,
    "read": read_files,
    "ls": ls_l,
    "unlink": unlink,
    "dirs": dirs_ops,
    "tar": untar,
    "twomount": two_mounts,
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="one bench/compare workload (internal)")
    ap.add_argument("name", choices=sorted(WORKLOADS))
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--root2", type=Path)
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--params", required=True, help="JSON object")
    ap.add_argument("--time-limit", type=float, required=True)
    a = ap.parse_args(argv)
    ctx = Ctx(
        root=a.root,
        root2=a.root2 or a.root,
        state_file=a.state,
        params=json.loads(a.params),
        deadline=time.monotonic() + a.time_limit,
    )
    if a.state.exists():
        ctx.state = json.loads(a.state.read_text())
    try:
        out = WORKLOADS[a.name](ctx)
    except VerifyError as e:
        sys.exit(f"verify failed: {e}")
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        sys.exit(f"{type(e).__name__}: {e}")
    finally:
        ctx.save()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
