"""The transaction engine on real SQLite and PostgreSQL: undo order, crash
recovery with a real SIGKILL, per-volume serialization, parallelism."""

from __future__ import annotations

import os
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

    def rm(_: Any, p: dict[str, Any]) -> None:
        if os.path.isdir(p["path"]):
            os.rmdir(p["path"])

    reg.register("mkdir", mk, rm)
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

    reg.register("s", do, lambda _, p: calls.append(f"undo{p['n']}"))
    eng = Engine(db, reg, None)
    with pytest.raises(RuntimeError, match="step 3 broke"):
        eng.run("k", "v", [Step("s", {"n": i}) for i in (1, 2, 3, 4)])
    assert calls == ["do1", "do2", "do3", "undo3", "undo2", "undo1"]
    assert state(db) == [("rolled_back", 2, "step 3 broke")]
    db.close()


def test_sigkill_mid_transaction_is_rolled_back_at_restart(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    env = {**os.environ, CRASH_AFTER_ENV: "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "tests.mgmt.txn_crash", db_url, str(tmp_path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == -9, r.stderr
    assert (tmp_path / "a").is_dir() and not (tmp_path / "b").exists()
    assert state(db) == [("running", 1, None)]
    assert Engine(db, folder_registry(), None).recover() == 1
    assert not (tmp_path / "a").exists()  # nothing half-made remains
    assert state(db) == [("rolled_back", 1, "gfsd stopped during the transaction")]
    assert Engine(db, folder_registry(), None).recover() == 0
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

    reg.register("meet", do, lambda _, p: None)
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
    reg.register("noop", lambda _, p: None, lambda _, p: None)
    eng = Engine(db, reg, None)
    with ThreadPoolExecutor(20) as pool:
        ids = list(
            pool.map(lambda i: eng.run("k", f"vol{i}", [Step("noop"), Step("noop")]), range(100))
        )
    assert len(set(ids)) == 100
    assert {s for s, _, _ in state(db)} == {"done"}
    db.close()
