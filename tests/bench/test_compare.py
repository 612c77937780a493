"""bench/compare: the side-by-side benchmark runs, checks what it reads back, reports
ratios the right way round, and leaves nothing behind (also after Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bench import compare, workloads
from bench.gluster import proc_cmdlines
from tests.procs import have_fuse

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "bench" / "compare"


def ctx(tmp_path: Path, **params: Any) -> workloads.Ctx:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    p = {"files": 30, "dirs": 3, "dir_ops": 10, "two_files": 10, "time_limit": 30, **params}
    return workloads.Ctx(root, root, tmp_path / "state.json", p, time.monotonic() + 30)


# -- without FUSE ----------------------------------------------------------------------


def test_only_brings_what_a_workload_needs_and_bad_options_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = compare.parse(["--only", "stat,randread", "--targets", "local,gfs"])
    assert a.workload_list == ["seqwrite", "randread", "create", "stat"]
    assert a.target_list == ["gfs", "local"]
    assert compare.parse(["--smoke", "--files", "7"]).params["files"] == 7
    for bad, says in [
        (["--only", "nope"], "unknown workload(s) nope"),
        (["--targets", "gfs,ceph"], "--targets"),
        (["--targets", "gfs,gfs"], "--targets"),
        (["--files", "0"], "--files must be positive"),
        (["--rand-io-mib", "64", "--rand-file-mib", "8"], "cannot exceed"),
    ]:
        with pytest.raises(SystemExit) as e:
            compare.parse(bad)
        assert e.value.code == 2
        assert says in capsys.readouterr().err


def test_ratios_say_how_much_better_gfs_is_for_rates_and_times() -> None:
    def row(w: str, t: str, metrics: dict[str, float], error: str | None = None) -> dict[str, Any]:
        return {
            "workload": w,
            "target": t,
            "error": error,
            "metrics": {
                k: {"value": v, "unit": "u", "ops": 1, "seconds": 1, "partial": t == "local"}
                for k, v in metrics.items()
            },
        }

    results = [
        row("create", "gfs", {"create": 300}),
        row("create", "glusterfs", {"create": 100}),
        row("create", "passthrough", {"create": 600}),
        row("create", "local", {"create": 9000}),
        row("tar", "gfs", {"untar": 10, "rm_rf": 2}),
        row("tar", "glusterfs", {"untar": 50, "rm_rf": 1}),
        row("tar", "passthrough", {}, error="verify failed: x"),
        row("tar", "local", {"untar": 1, "rm_rf": 0.5}),
    ]
    targets = list(compare.TARGETS)
    params = {"files": 5, "dirs": 2, "tar_name": "t.tgz", "tar_files": 3, "tar_dirs": 1}
    rows, md = compare.table(results, params, targets, ["create", "tar"])
    by = {r["metric"]: r for r in rows}
    assert by["create"]["ratios"] == {"glusterfs": 3.0, "passthrough": 0.5}
    assert by["untar"]["ratios"] == {"glusterfs": 5.0}  # 50 s against 10 s: 5x better
    assert by["rm_rf"]["ratios"] == {"glusterfs": 0.5}
    assert by["untar"]["failed"] == ["passthrough"]
    assert by["create"]["partial"] == ["local"]
    lines = md.replace(compare.TIMES, "x").replace(compare.NONE, "-").splitlines()
    assert lines[0].endswith("| gfs ÷ GlusterFS | gfs ÷ passthrough |")
    assert (
        "| create 5 x 4 KiB files in 2 dirs, files/s | 300 | 100 | 600 | 9,000* | 3.00x | 0.50x |"
        in lines
    )
    assert (
        "| untar t.tgz (3 files, 1 dirs), s | 10.0 | 50.0 | failed | 1.00* | 5.00x | - |" in lines
    )


def test_small_file_workloads_read_back_what_they_wrote(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    assert c.params["files"] == workloads.create(c)["create"]["ops"]
    for f in (workloads.stat_files, workloads.read_files, workloads.ls_l):
        (m,) = f(c).values()
        assert (m["ops"], m["partial"]) == (30, False)
    victim = workloads.small_path(workloads.small_dirs(c), 17)
    victim.write_bytes(b"x" * workloads.FILE_SIZE)  # same size, other bytes
    with pytest.raises(workloads.VerifyError, match="f000017"):
        workloads.read_files(c)
    victim.unlink()
    with pytest.raises(OSError):
        workloads.stat_files(c)
    victim.write_bytes(b"")
    assert workloads.unlink(c)["unlink"]["ops"] == 30
    assert not (c.root / "small").exists()
    out = workloads.dirs_ops(c)
    assert [out[k]["ops"] for k in ("mkdir", "rename", "rmdir")] == [10, 10, 10]
    assert workloads.two_mounts(c)["two_mount"]["ops"] == 10


def test_tarball_extraction_is_checked_against_the_tarball(tmp_path: Path) -> None:
    tarball = compare.generated_tarball(tmp_path, 40)
    m = compare.manifest(tarball, tmp_path / "manifest.json")
    assert sum(1 for k, _ in m["entries"].values() if k == "f") == 40
    c = ctx(tmp_path, manifest=str(tmp_path / "manifest.json"))
    out = workloads.untar(c)
    assert out["untar"]["ops"] == len(m["entries"]) and not out["untar"]["partial"]
    assert not (c.root / "tar").exists()
    (c.root / "tar").mkdir()
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(c.root / "tar")], check=True)
    sample = next(iter(m["sample"]))
    (c.root / "tar" / sample).write_bytes(b"changed")
    with pytest.raises(workloads.VerifyError, match="wrong type/size"):
        workloads.check_tree(c.root / "tar", m)


# -- the real thing --------------------------------------------------------------------


def leftovers(where: Path) -> list[str]:
    mounts = [
        ln.split()[4]
        for ln in Path("/proc/self/mountinfo").read_text().splitlines()
        if ln.split()[4].startswith(str(where))
    ]
    procs = [f"{pid}: {cmd}" for pid, cmd in proc_cmdlines() if str(where) in cmd]
    return mounts + procs


@pytest.mark.fuse
def test_smoke_run_on_every_target(tmp_path: Path) -> None:
    if not have_fuse():
        pytest.fail("bench/compare needs root, /dev/fuse and fusermount3")
    out = tmp_path / "compare.json"
    p = subprocess.run(
        [str(COMPARE), "--smoke", "--workdir", str(tmp_path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["complete"] and data["command"].startswith("bench/compare --smoke")
    assert set(data["targets"]) == set(compare.TARGETS)
    assert all("error" not in t for t in data["targets"].values())
    ran = {(r["workload"], r["target"]) for r in data["results"] if not r["error"]}
    assert ran == {(w.name, t) for w in compare.WORKLOADS for t in compare.TARGETS}
    for r in data["results"]:
        for name, m in r["metrics"].items():
            assert m["value"] > 0 and not m["partial"], (r["target"], name, m)
    rows = {r["metric"]: r for r in data["table"]}
    assert set(rows) == set(compare.ROWS)
    assert all(set(r["ratios"]) == {"glusterfs", "passthrough"} for r in rows.values())
    assert "| gfs ÷ GlusterFS | gfs ÷ passthrough |" in p.stdout
    assert leftovers(tmp_path) == []


@pytest.mark.fuse
def test_ctrl_c_stops_and_unmounts_everything(tmp_path: Path) -> None:
    if not have_fuse():
        pytest.fail("bench/compare needs root, /dev/fuse and fusermount3")
    proc = subprocess.Popen(
        [str(COMPARE), "--smoke", "--workdir", str(tmp_path), "--out", str(tmp_path / "c.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # as a terminal gives it, even when this test runs where SIGINT is ignored (nohup)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("seqwrite"):  # every target is up, a workload has run
                break
        assert leftovers(tmp_path), "nothing was running to interrupt: " + "".join(seen)
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest
    assert leftovers(tmp_path) == []
    assert not json.loads((tmp_path / "c.json").read_text())["complete"]
