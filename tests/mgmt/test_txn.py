"""The transaction engine on real SQLite and PostgreSQL: undo order, crash
recovery with a real SIGKILL, per-volume serialization, parallelism."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Transaction
from gfs_mgmt.txn.engine import CRASH_AFTER_ENV, Engine, Registry, Step

ROOT = Path(__file__).resolve().parents[2]


def folder_registry() -> Registry:
    reg = Registry()

    def mk(_: Any, p: dict[str, Any]) -> None:
        os.mkdir(p["path"])

    def rm(_: Any, p: dict[str, Any], result: Any) -> None:
        if os.path.isdir(p["path"]):
            os.rmdir(p["path"])

    def mk_and_die(_: Any, p: dict[str, Any]) -> None:
        os.mkdir(p["path"])
        os.kill(os.getpid(), signal.SIGKILL)

    reg.register("mkdir", mk, rm)
    reg.register("mkdir_then_die", mk_and_die, rm)
    return reg


def state(db: Database, txn_id: str | None = None) -> list[tuple[str, int, str | None]]:
    with db.session() as s:
        q = s.query(Transaction)
        if txn_id:
            q = q.filter(Transaction.id == txn_id)
        return [(t.state, t.done, t.error) for t in q.all()]


def test_failed_step_undoes_in_reverse(db_url: str) -> None:
    db = Database(db_url)
    calls: list[str] = []
    reg = Registry()

    def do(_: Any, p: dict[str, Any]) -> None:
        calls.append(f"do{p['n']}")
        if p["n"] == 3:
            raise RuntimeError("step 3 broke")

    reg.register("s", do, lambda _, p, r: calls.append(f"undo{p['n']}"))
    eng = Engine(db, reg, None)
    with pytest.raises(RuntimeError, match="step 3 broke"):
        eng.run("k", "v", [Step("s", {"n": i}) for i in (1, 2, 3, 4)])
    assert calls == ["do1", "do2", "do3", "undo3", "undo2", "undo1"]
    assert state(db) == [("rolled_back", 2, "step 3 broke")]
    db.close()


@pytest.mark.parametrize("mode", ["after-step", "in-step"])
def test_sigkill_mid_transaction_is_rolled_back_at_restart(
    db_url: str, tmp_path: Path, mode: str
) -> None:
    """A real SIGKILL, after step 1 was recorded or inside step 2 (which had made its
    folder but was not recorded): recovery removes every folder either step made."""
    db = Database(db_url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if mode == "after-step":
        env[CRASH_AFTER_ENV] = "1"
    r = subprocess.run(
        [sys.executable, "-m", "tests.mgmt.txn_crash", db_url, str(tmp_path), mode],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert (tmp_path / "a").is_dir()
    assert (tmp_path / "b").is_dir() == (mode == "in-step")
    assert state(db) == [("running", 1, None)]
    assert Engine(db, folder_registry(), None).recover() == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert state(db) == [("rolled_back", 1, "gfsd stopped during the transaction")]
    assert Engine(db, folder_registry(), None).recover() == 0
    db.close()


def _reporting_registry(seen: list[tuple[int, Any]]) -> Registry:
    reg = Registry()

    def do(_: Any, p: dict[str, Any]) -> dict[str, Any]:
        if p["n"] == 3:
            raise RuntimeError("step 3 broke")
        return {"made": p["n"]}

    reg.register("s", do, lambda _, p, r: seen.append((p["n"], r)))
    return reg


def test_undo_gets_what_its_do_reported(db_url: str) -> None:
    """Each done step's result is recorded and handed to its undo; the failed step
    reported nothing, so its undo gets None (it may remove only what is provably its)."""
    db = Database(db_url)
    seen: list[tuple[int, Any]] = []
    with pytest.raises(RuntimeError, match="step 3 broke"):
        Engine(db, _reporting_registry(seen), None).run(
            "k", "v", [Step("s", {"n": i}) for i in (1, 2, 3)]
        )
    assert seen == [(3, None), (2, {"made": 2}), (1, {"made": 1})]
    with db.session() as s:
        assert s.query(Transaction).one().results == [{"made": 1}, {"made": 2}]
    db.close()


def test_recovery_passes_recorded_results(db_url: str) -> None:
    db = Database(db_url)
    seen: list[tuple[int, Any]] = []
    steps = [{"kind": "s", "params": {"n": n}} for n in (1, 2, 4)]
    with db.session() as s:  # killed while step 2 ran; and a row from before results
        s.add(
            Transaction(
                kind="k", volume="v", steps=steps, state="running", done=1, results=[{"made": 1}]
            )
        )
        s.add(Transaction(kind="k", volume="w", steps=steps, state="running", done=1))
    assert Engine(db, _reporting_registry(seen), None).recover() == 2
    assert sorted(seen, key=str) == sorted(
        [(2, None), (1, {"made": 1}), (2, None), (1, None)], key=str
    )
    db.close()


def test_all_steps_done_but_unmarked_is_finished_at_recovery(db_url: str) -> None:
    db = Database(db_url)
    calls: list[str] = []
    reg = Registry()
    reg.register("s", lambda _, p: None, lambda _, p, r: calls.append("undo"))
    with db.session() as s:  # what a gfsd killed right before the final commit leaves
        s.add(Transaction(kind="k", volume="v", steps=[{"kind": "s"}], state="running", done=1))
    assert Engine(db, reg, None).recover() == 1
    assert calls == [] and state(db) == [("done", 1, None)]
    db.close()


def test_failed_undo_leaves_failed_for_recovery_to_retry(db_url: str) -> None:
    db = Database(db_url)
    broken = True
    undone: list[int] = []
    reg = Registry()

    def do(_: Any, p: dict[str, Any]) -> None:
        if p["n"] == 2:
            raise RuntimeError("do 2 broke")

    def undo(_: Any, p: dict[str, Any], result: Any) -> None:
        if broken and p["n"] == 1:
            raise OSError("peer unreachable")
        undone.append(p["n"])

    reg.register("s", do, undo)
    with pytest.raises(RuntimeError, match="do 2 broke"):
        Engine(db, reg, None).run("k", "v", [Step("s", {"n": 1}), Step("s", {"n": 2})])
    [(st, done, err)] = state(db)
    assert (st, done) == ("failed", 1) and err is not None and "peer unreachable" in err
    broken = False
    assert Engine(db, reg, None).recover() == 1
    assert undone == [2, 2, 1]  # undo 2 ran twice: undos must be idempotent
    assert state(db)[0][0] == "rolled_back"
    db.close()


def _timed_registry(events: dict[str, threading.Event], log: list[str]) -> Registry:
    reg = Registry()

    def do(_: Any, p: dict[str, Any]) -> None:
        log.append(f"enter {p['who']}")
        events[p["who"]].set()
        other = events[p["other"]]
        if other.wait(p["wait"]):
            log.append(f"{p['who']} saw {p['other']} inside")
        log.append(f"exit {p['who']}")

    reg.register("meet", do, lambda _, p, r: None)
    return reg


@pytest.mark.parametrize("same_volume", [True, False])
def test_serialized_per_volume_parallel_across(db_url: str, same_volume: bool) -> None:
    db = Database(db_url)
    events = {"A": threading.Event(), "B": threading.Event()}
    log: list[str] = []
    eng = Engine(db, _timed_registry(events, log), None)
    # Same volume: A waits 0.5 s for B to enter, which it must not.
    # Different volumes: each waits up to 20 s for the other, which must come.
    wait = 0.5 if same_volume else 20.0
    vol_b = "v" if same_volume else "w"
    with ThreadPoolExecutor(2) as pool:
        fa = pool.submit(
            eng.run, "k", "v", [Step("meet", {"who": "A", "other": "B", "wait": wait})]
        )
        assert events["A"].wait(20)
        fb = pool.submit(
            eng.run, "k", vol_b, [Step("meet", {"who": "B", "other": "A", "wait": wait})]
        )
        fa.result(60)
        fb.result(60)
    if same_volume:
        assert log[:2] == ["enter A", "exit A"] and "A saw B inside" not in log
    else:
        assert "A saw B inside" in log and "B saw A inside" in log
    db.close()


def test_hundred_volumes_in_parallel(db_url: str) -> None:
    db = Database(db_url)
    reg = Registry()
    reg.register("noop", lambda _, p: None, lambda _, p, r: None)
    eng = Engine(db, reg, None)
    with ThreadPoolExecutor(20) as pool:
        ids = list(
            pool.map(lambda i: eng.run("k", f"vol{i}", [Step("noop"), Step("noop")]), range(100))
        )
    assert len(set(ids)) == 100
    assert {s for s, _, _ in state(db)} == {"done"}
    db.close()


def test_two_gfsd_on_postgresql_serialize_per_volume(pg_url: str) -> None:
    """Two engines with their own connection pools (two gfsd sharing one PostgreSQL):
    the advisory lock, not the in-process one, keeps a volume's transactions apart."""
    db1, db2 = Database(pg_url), Database(pg_url)
    events = {"A": threading.Event(), "B": threading.Event()}
    log: list[str] = []
    reg = _timed_registry(events, log)
    e1, e2 = Engine(db1, reg, None), Engine(db2, reg, None)
    with ThreadPoolExecutor(2) as pool:
        fa = pool.submit(e1.run, "k", "v", [Step("meet", {"who": "A", "other": "B", "wait": 0.5})])
        assert events["A"].wait(20)
        fb = pool.submit(e2.run, "k", "v", [Step("meet", {"who": "B", "other": "A", "wait": 0.5})])
        fa.result(60)
        fb.result(60)
    assert log[:2] == ["enter A", "exit A"] and "A saw B inside" not in log
    db1.close()
    db2.close()


def test_recover_leaves_a_live_gfsd_transaction_alone(pg_url: str) -> None:
    """A second gfsd starting while the first runs a transaction must not roll it back."""
    db1, db2 = Database(pg_url), Database(pg_url)
    inside, release = threading.Event(), threading.Event()
    undone: list[str] = []
    reg = Registry()

    def block(_: Any, p: dict[str, Any]) -> None:
        inside.set()
        assert release.wait(20)

    reg.register("block", block, lambda _, p, r: undone.append("undo"))
    with ThreadPoolExecutor(1) as pool:
        f = pool.submit(Engine(db1, reg, None).run, "k", "v", [Step("block")])
        try:
            assert inside.wait(20)
            assert Engine(db2, reg, None).recover() == 0
            assert state(db2) == [("running", 0, None)]
        finally:
            release.set()
        f.result(60)
    assert undone == [] and state(db1) == [("done", 1, None)]
    db1.close()
    db2.close()
