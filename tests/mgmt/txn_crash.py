"""Run by test_txn in a subprocess: a transaction whose process dies after step 1."""

from __future__ import annotations

import sys
from pathlib import Path

from gfs_mgmt.store.db import Database
from tests.mgmt.test_txn import folder_registry

if __name__ == "__main__":
    url, base = sys.argv[1], Path(sys.argv[2])
    from gfs_mgmt.txn.engine import Engine, Step

    eng = Engine(Database(url), folder_registry(), None)
    eng.run(
        "make",
        "vol",
        [Step("mkdir", {"path": str(base / "a")}), Step("mkdir", {"path": str(base / "b")})],
    )
    print("not killed", flush=True)
