"""A stateful property test of the management plane's data safety, against real
daemons on SQLite and PostgreSQL: random sequences of volume create (by size or from
explicit bricks, some pointing at folders with user data or at other volumes'
bricks), start, stop, delete with and without data, expand and replace-brick, files
written through real mounts, and faults (gfsd SIGKILLed after a random transaction
step, a brick daemon down during an operation).

After every step: every file written through a mount of a surviving volume is intact
on each of its in-sync bricks; nothing outside a deleted volume's own brick folders
has gone (user folders, the data of volumes deleted without --delete-data, bricks
replaced out); no folder under a brick root that nobody owns; and gfsd's store and
every brick daemon agree on what is served.

Bounded by example and step count (GFS_PROPERTY_EXAMPLES, GFS_PROPERTY_STEPS; a
wall-clock budget would make hypothesis's replay of a failure differ from the run
that found it) and by the pytest timeout; no shrinking (a real cluster per
example), so a failure reports the whole sequence and the blob to reproduce it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from gfs.api import models as m
from gfs.api.client import ApiError, Client
from gfs_mgmt.peer.brickd import BrickdAdmin
from gfs_mgmt.txn.engine import CRASH_AFTER_ENV
from tests.cluster import Cluster, local_cluster
from tests.procs import Gfsd, Mount

EXAMPLES = int(os.environ.get("GFS_PROPERTY_EXAMPLES", "4"))
STEPS = int(os.environ.get("GFS_PROPERTY_STEPS", "10"))
NAMES = ["va", "vb", "vc"]
#: what a brick daemon keeps in its first root besides brick folders
NODE_FILES = {".gfs-node.json", ".gfs-node.json.tmp"}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_tree(folder: Path) -> dict[str, str]:
    """Regular files under `folder` (gfs metadata left out) -> sha256."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        if Path(dirpath) == folder:
            dirnames[:] = [d for d in dirnames if d != ".gfs"]
        for f in filenames:
            p = Path(dirpath) / f
            out[str(p.relative_to(folder))] = digest(p.read_bytes())
    return out


class Safety(RuleBasedStateMachine):
    """One example: a fresh cluster (`make_cluster`), a model of what must survive."""

    make_cluster: Any = None  # set by the test: () -> (context manager, Cluster)
    tmp: Path = Path()

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[Path, dict[str, str]] = {}
        self.vols: dict[str, str] = {}
        self.files: dict[str, dict[str, str]] = {}
        self.counter = 0
        self._cm, self.c = type(self).make_cluster()
        self.c_api = self.c.client()
        for i, root in enumerate(self.c.roots):
            user = root / f"precious{i}"
            user.mkdir()
            (user / "data.txt").write_bytes(b"user data %d\n" % i)
            self.kept[user] = read_tree(user)
            (root / f"empty{i}").mkdir()

    # `kept`: what must stay on disk, folder -> {relative file: sha256} (user folders,
    # leftovers of volumes deleted without data, replaced-out bricks); `vols`: the
    # volumes that exist and their state; `files`: what was written through mounts.

    def teardown(self) -> None:
        self.c_api.close()
        self._cm.__exit__(None, None, None)

    # -- helpers -----------------------------------------------------------------------------

    def api(self) -> Client:
        return self.c_api

    def layout(self, name: str) -> m.Volume:
        return self.api().volume(name)

    def brick_folders(self) -> dict[Path, tuple[str, bool]]:
        """Every brick folder gfsd knows -> (volume, in_sync)."""
        out = {}
        for v in self.api().volumes():
            for rs in v.replica_sets:
                for b in rs.bricks:
                    out[Path(b.path)] = (v.name, b.in_sync)
        return out

    def target(self, node: int, kind: str) -> str:
        """An explicit brick on `node`: a fresh folder, an empty one the operator made,
        a folder with user data, or a folder of another volume's brick."""
        d, root = self.c.nodes[node], self.c.roots[node]
        if kind == "foreign":
            taken = [p for p in self.brick_folders() if p.parent == root]
            folder = taken[0].name if taken else f"precious{node}"
        elif kind == "user":
            folder = f"precious{node}"
        elif kind == "empty":
            folder = f"empty{node}"
        else:
            self.counter += 1
            folder = f"fresh{self.counter}"
        return f"{d.address}:{root}/{folder}"

    def attempt(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ApiError as e:
            assert e.status != 500 and "Traceback" not in e.message, e.message
            return None

    def before_destroy(self, name: str) -> None:
        """The data of `name`'s bricks, kept on disk when it is deleted without data."""
        for rs in self.layout(name).replica_sets:
            for b in rs.bricks:
                if b.in_sync:
                    self.kept[Path(b.path)] = dict(self.files.get(name, {}))

    def sync_state(self, name: str) -> None:
        try:
            self.vols[name] = self.layout(name).state
        except ApiError as e:
            assert e.status == 404, e.message
            self.vols.pop(name, None)
            self.files.pop(name, None)

    # -- rules -------------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), size=st.sampled_from(["8MiB", "16MiB"]))
    def create_by_size(self, name: str, size: str) -> None:
        if self.attempt(self.api().volume_create, m.VolumeCreate(name=name, replica=3, size=size)):
            self.vols[name] = "created"

    @rule(
        name=st.sampled_from(NAMES),
        kinds=st.lists(
            st.sampled_from(["fresh", "fresh", "empty", "user", "foreign"]), min_size=3, max_size=3
        ),
    )
    def create_from_bricks(self, name: str, kinds: list[str]) -> None:
        bricks = [self.target(i, k) for i, k in enumerate(kinds)]
        if self.attempt(
            self.api().volume_create, m.VolumeCreate(name=name, replica=3, bricks=bricks)
        ):
            self.vols[name] = "created"

    @precondition(lambda self: self.vols)
    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.vols)))
        self.attempt(self.api().volume_start, name)
        self.sync_state(name)

    @precondition(lambda self: self.vols)
    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.vols)))
        self.attempt(self.api().volume_stop, name)
        self.sync_state(name)

    @precondition(lambda self: self.vols)
    @rule(data=st.data(), with_data=st.booleans())
    def delete(self, data: st.DataObject, with_data: bool) -> None:
        name = data.draw(st.sampled_from(sorted(self.vols)))
        if not with_data and self.vols[name] != "started":
            self.before_destroy(name)
        # A delete that fails (a daemon down, a brick not its own) deletes nothing:
        # every daemon proves ownership before the first byte goes.
        self.attempt(self.api().volume_delete, name, with_data)
        self.sync_state(name)

    @precondition(lambda self: self.vols)
    @rule(data=st.data())
    def expand(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.vols)))
        self.attempt(self.api().volume_expand, name, "32MiB")

    @precondition(lambda self: self.vols)
    @rule(data=st.data(), pos=st.integers(0, 2), kind=st.sampled_from(["fresh", "user", "foreign"]))
    def replace_brick(self, data: st.DataObject, pos: int, kind: str) -> None:
        name = data.draw(st.sampled_from(sorted(self.vols)))
        v = self.layout(name)
        old = v.replica_sets[0].bricks[pos]
        node = next(i for i, d in enumerate(self.c.nodes) if d.address == old.address)
        new = self.target(node, kind)
        done = self.attempt(self.api().volume_replace_brick, name, old.name, new)
        if done and old.in_sync:
            # The old brick leaves the volume with its data, like gluster's replace-brick.
            self.kept[Path(old.path)] = dict(self.files.get(name, {}))

    @precondition(lambda self: "started" in self.vols.values())
    @rule(data=st.data(), sizes=st.lists(st.integers(0, 70_000), min_size=1, max_size=3))
    def write(self, data: st.DataObject, sizes: list[int]) -> None:
        name = data.draw(st.sampled_from(sorted(n for n, s in self.vols.items() if s == "started")))
        token = self.c.gfsd.state / "admin.token"
        self.counter += 1
        mnt = Mount(
            f"{self.c.gfsd.address}:/{name}",
            self.tmp / f"mnt{self.counter}",
            self.tmp / f"mnt{self.counter}.log",
            f"token-file={token}",
        ).start()
        try:
            for size in sizes:
                self.counter += 1
                body = os.urandom(size)
                rel = f"f{self.counter}"
                (mnt.mountpoint / rel).write_bytes(body)
                self.files.setdefault(name, {})[rel] = digest(body)
        finally:
            mnt.stop()

    @precondition(lambda self: self.vols)
    @rule(
        data=st.data(),
        op=st.sampled_from(["create", "start", "stop", "delete", "replace"]),
        after=st.integers(1, 4),
    )
    def gfsd_crashes(self, data: st.DataObject, op: str, after: int) -> None:
        """gfsd SIGKILLed after step `after` of the next transaction; recovery on restart."""
        g = self.c.gfsd
        g.stop()
        crashing = Gfsd(g.state, g.log, g.db, {CRASH_AFTER_ENV: str(after)})
        crashing.port, crashing.address = g.port, g.address
        crashing.start()
        name = data.draw(st.sampled_from(sorted(self.vols)))
        try:
            if op == "create":
                fresh = next((n for n in NAMES if n not in self.vols), None)
                if fresh is not None:
                    self.create_by_size(fresh, "8MiB")
            elif op == "start":
                self.attempt(self.api().volume_start, name)
            elif op == "stop":
                self.attempt(self.api().volume_stop, name)
            elif op == "delete":
                # Without data: whether it happened or not, the data stays.
                if self.vols[name] != "started":
                    self.before_destroy(name)
                self.attempt(self.api().volume_delete, name, False)
            else:
                self.replace_brick(data, 0, "fresh")
        finally:
            crashing.stop()
            g.start()  # recovery runs before it serves
        for n in NAMES:
            self.sync_state(n)

    @precondition(lambda self: self.vols)
    @rule(
        data=st.data(),
        node=st.integers(0, 2),
        op=st.sampled_from(["start", "stop", "delete", "create"]),
    )
    def peer_down(self, data: st.DataObject, node: int, op: str) -> None:
        """A brick daemon is down during an operation, then comes back."""
        d = self.c.nodes[node]
        d.stop()
        name = data.draw(st.sampled_from(sorted(self.vols)))
        try:
            if op == "start":
                self.attempt(self.api().volume_start, name)
            elif op == "stop":
                self.attempt(self.api().volume_stop, name)
            elif op == "delete":
                self.delete(data, True)
            else:
                fresh = next((n for n in NAMES if n not in self.vols), None)
                if fresh is not None:
                    self.create_by_size(fresh, "8MiB")
        finally:
            d.start()
        for n in NAMES:
            self.sync_state(n)

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def kept_data_intact(self) -> None:
        for folder, files in self.kept.items():
            assert folder.is_dir(), f"{folder} is gone"
            have = read_tree(folder)
            for rel, sha in files.items():
                assert have.get(rel) == sha, f"{folder}/{rel} lost or changed"

    @invariant()
    def volume_files_intact(self) -> None:
        for name, files in self.files.items():
            if name not in self.vols:
                continue
            for folder, (vol, in_sync) in self.brick_folders().items():
                if vol != name or not in_sync:
                    continue
                have = read_tree(folder)
                for rel, sha in files.items():
                    assert have.get(rel) == sha, f"volume {name}: {folder}/{rel} lost or changed"

    @invariant()
    def store_matches_model(self) -> None:
        stored = {v.name: v.state for v in self.api().volumes()}
        assert stored == self.vols

    @invariant()
    def no_orphan_folders(self) -> None:
        owned = set(self.brick_folders()) | set(self.kept)
        for root in self.c.roots:
            for p in root.iterdir():
                if p.name in NODE_FILES or p.name.startswith("empty"):
                    continue
                assert p in owned, f"{p} belongs to nobody"

    @invariant()
    def daemons_serve_what_gfsd_says(self) -> None:
        want: dict[str, set[str]] = {d.address: set() for d in self.c.nodes}
        for v in self.api().volumes():
            if v.state == "started":
                for rs in v.replica_sets:
                    for b in rs.bricks:
                        want[b.address].add(b.name)
        for d in self.c.nodes:
            with BrickdAdmin(d.address) as a:
                served = {b.name for b in a.info().bricks if not b.name.startswith("boot")}
            assert served == want[d.address], f"{d.address} serves {served}, gfsd says {want}"


@pytest.mark.timeout(900)
def test_management_never_destroys_data(db_url: str, tmp_path: Path) -> None:
    count = 0

    def make_cluster() -> tuple[Any, Cluster]:
        nonlocal count
        count += 1
        base = tmp_path / f"ex{count}"
        base.mkdir()
        db = db_url if count == 1 else _fresh_db(db_url, count, base)
        cm = local_cluster(base, db)
        Safety.tmp = base
        return cm, cm.__enter__()

    Safety.make_cluster = staticmethod(make_cluster)
    run_state_machine_as_test(
        Safety,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        ),
    )


def _fresh_db(db_url: str, count: int, base: Path) -> str:
    if db_url.startswith("sqlite"):
        return f"sqlite:///{base / 'gfsd.db'}"
    # Same server, a new database per example.
    import psycopg

    server, _, dbname = db_url.rpartition("/")
    new = f"{dbname}_{count}"
    admin = server.replace("postgresql+psycopg", "postgresql") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{new}"')
    return f"{server}/{new}"
