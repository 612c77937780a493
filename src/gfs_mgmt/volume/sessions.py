"""Which clients have a volume mounted, from the session tables of its brick daemons
(admin.proto `Sessions`; docs/architecture.md, "Client sessions"). gfsd refuses to stop
or delete a volume that is mounted, naming the mounts, unless forced."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from gfs.api import models as m
from gfs.errors import GfsError
from gfs.proto import admin_pb2 as apb
from gfs_mgmt.peer.brickd import BrickdAdmin, PeerError

log = logging.getLogger(__name__)

#: a daemon that does not answer within this is left out (its members' daemons
#: know the same mounts: a mount announces itself to every brick it uses)
TIMEOUT = 3.0
#: mounts named in a refusal; the rest are counted
NAMED = 5


def _ask(address: str, names: list[str]) -> list[apb.ClientSession]:
    try:
        with BrickdAdmin(address, timeout=TIMEOUT) as a:
            return a.sessions(names)
    except PeerError as e:
        log.warning("sessions unknown address=%s error=%s", address, e)
        return []


def clients(bricks: list[tuple[str, str]]) -> list[m.ClientInfo]:
    """The mounts using any of `bricks` ((daemon address, brick name) pairs)."""
    by_address: dict[str, list[str]] = {}
    for address, name in bricks:
        by_address.setdefault(address, []).append(name)
    with ThreadPoolExecutor(max(1, min(16, len(by_address)))) as pool:
        answers = list(pool.map(lambda kv: _ask(*kv), by_address.items()))
    found: dict[str, m.ClientInfo] = {}
    for got in answers:
        for s in got:
            c = found.get(s.session)
            if c is None:
                c = found[s.session] = m.ClientInfo(
                    session=s.session,
                    hostname=s.hostname,
                    mountpoint=s.mountpoint,
                    pid=s.pid,
                    address=s.peer.rpartition(":")[0] or s.peer,
                    bricks=[],
                    idle_seconds=s.idle_seconds,
                )
            c.bricks = sorted({*c.bricks, s.brick})
            c.idle_seconds = min(c.idle_seconds, s.idle_seconds)
    return sorted(found.values(), key=lambda c: (c.hostname, c.mountpoint, c.session))


def refuse_if_mounted(volume: str, action: str, found: list[m.ClientInfo]) -> None:
    """GfsError volume_in_use (HTTP 409) naming the mounts, if there are any."""
    if not found:
        return
    named = ", ".join(f"{c.hostname}:{c.mountpoint} (pid {c.pid})" for c in found[:NAMED])
    more = f" and {len(found) - NAMED} more" if len(found) > NAMED else ""
    raise GfsError(
        "busy",
        "volume_in_use",
        f"volume {volume} is mounted by {named}{more}; unmount it there first,"
        f" or {action} with --force (its mounts then answer ESHUTDOWN)",
        clients=[c.model_dump(mode="json") for c in found],
    )
