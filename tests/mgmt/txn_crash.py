"""Run by test_txn in a subprocess: a transaction whose process dies with SIGKILL,
either after step 1 was recorded (GFS_TXN_CRASH_AFTER=1, mode "after-step") or in
the middle of step 2 (mode "in-step": the step makes its folder, then kills itself)."""

from __future__ import annotations

import sys
from pathlib import Path

from gfs_mgmt.store.db import Database
from gfs_mgmt.txn.engine import Engine, Step
from tests.mgmt.test_txn import folder_registry

if __name__ == "__main__":
    url, base, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    second = "mkdir" if mode == "after-step" else "mkdir_then_die"
    eng = Engine(Database(url), folder_registry(), None)
    eng.run(
        "make",
        "vol",
        [Step("mkdir", {"path": str(base / "a")}), Step(second, {"path": str(base / "b")})],
    )
    print("not killed", flush=True)
