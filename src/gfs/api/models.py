"""Wire types of gfsd's REST API (`/v1`). Handlers live in gfs_mgmt.api; these types
are the contract, shared by the server, the CLI and the mount helper."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime as _datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator


def _utc(d: _datetime) -> str:
    # The store keeps naive UTC; the wire always says so (RFC 3339 with an offset).
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).isoformat()


datetime = Annotated[_datetime, PlainSerializer(_utc, return_type=str, when_used="json")]

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
VolumeName = Annotated[str, Field(pattern=NAME_RE, description="1-64 of A-Z a-z 0-9 _ . -")]
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}


def parse_size(text: str | int) -> int:
    """'1GiB' -> 1073741824, '500M' -> 500000000, 4096 -> 4096; ValueError otherwise."""
    if isinstance(text, int):
        if text <= 0:
            raise ValueError("size must be positive")
        return text
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"size {text!r}: expected a number with an optional unit like 10GiB")
    unit = (m.group(2) or "").upper().removesuffix("B")
    factor = 1024 ** " KMGTP".index(unit[0]) if unit.endswith("I") else _UNITS[unit]
    value = int(float(m.group(1)) * factor)
    if value <= 0:
        raise ValueError("size must be positive")
    return value


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(Wire):
    code: str = Field(description="stable machine-readable code, e.g. volume_not_found")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class Health(Wire):
    status: Literal["ok"]
    version: str


class RootInfo(Wire):
    path: str
    total_bytes: int
    free_bytes: int
    used_bytes: int


class PeerAdd(Wire):
    address: str = Field(description="HOST:PORT of the peer's gfs-brickd", max_length=300)


class Peer(Wire):
    id: str
    name: str
    address: str
    zone: str
    online: bool
    roots: list[RootInfo]
    last_seen: datetime | None = None


class VolumeCreate(Wire):
    name: VolumeName
    replica: int = Field(3, ge=1, le=16)
    bricks: list[str] | None = Field(
        None, description="explicit bricks 'HOST_OR_PEER:/path', a multiple of replica"
    )
    size: int | str | None = Field(None, description="smart create: bytes or '10GiB'")
    zones: list[str] | None = None
    template: str | None = None
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("size")
    @classmethod
    def _size(cls, v: int | str | None) -> int | str | None:
        if v is not None:
            parse_size(v)
        return v


class BrickInfo(Wire):
    id: str
    name: str
    peer_id: str
    peer_name: str
    address: str
    path: str
    in_sync: bool


class ReplicaSet(Wire):
    index: int
    epoch: int
    primary: str | None
    bricks: list[BrickInfo]


class Volume(Wire):
    id: str
    name: str
    state: Literal["created", "started", "stopped"]
    replica: int
    size_bytes: int | None
    template: str | None
    options: dict[str, str]
    replica_sets: list[ReplicaSet]
    created: datetime


class BrickStatus(Wire):
    name: str
    peer_name: str
    address: str
    path: str
    online: bool
    total_bytes: int | None = None
    free_bytes: int | None = None
    used_bytes: int | None = None


class VolumeStatus(Wire):
    name: str
    state: str
    bricks: list[BrickStatus]


class ClientInfo(Wire):
    """A mount of a volume, as its brick daemons know it from the mount's session
    announcements (docs/architecture.md, "Client sessions")."""

    session: str
    hostname: str = Field(description="the client host, as it calls itself")
    mountpoint: str
    pid: int
    address: str = Field(description="the client's address as its brick daemons see it")
    bricks: list[str] = Field(description="the bricks of the volume it uses")
    idle_seconds: float = Field(description="since a brick last heard from it")


class Transaction(Wire):
    id: str
    kind: str
    volume: str | None
    state: str
    steps: list[str]
    done: int
    error: str | None
    created: datetime
    updated: datetime


class OptionInfo(Wire):
    name: str
    type: str
    default: str
    accepted: str
    help: str
    #: when a change takes effect: "live" (the bricks of a started volume have it when
    #: `volume set` returns) or "next mount"
    applies: str


class OptionsSet(Wire):
    options: dict[str, str] = Field(min_length=1)


class Template(Wire):
    name: str
    description: str
    options: dict[str, str]


class Expand(Wire):
    size: int | str

    @field_validator("size")
    @classmethod
    def _size(cls, v: int | str) -> int | str:
        parse_size(v)
        return v


class EventOut(Wire):
    id: int
    ts: datetime
    kind: str
    volume: str | None
    message: str


class WebhookAdd(Wire):
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048)


class WebhookOut(Wire):
    id: str
    url: str
    created: datetime


class ReplicaShrink(Wire):
    """A primary reports members that failed a mutation (compare-and-set on `epoch`)."""

    epoch: int = Field(ge=1)
    bricks: list[str] = Field(min_length=1, max_length=16)
    reporter: str = Field(max_length=128)


class ReplicaRejoin(Wire):
    """A primary reports a member healed and identical (compare-and-set on `epoch`)."""

    epoch: int = Field(ge=1)
    brick: str = Field(max_length=128)
    reporter: str = Field(max_length=128)


class ReplicaReconcile(Wire):
    """A client that cannot use the primary of `epoch`: gfsd confirms the configuration
    to the bricks, or promotes an in-sync member when the primary is gone."""

    epoch: int = Field(ge=1)


class HealMember(Wire):
    brick: str
    address: str
    path: str
    state: Literal["in_sync", "out"]
    primary: bool
    #: the brick's daemon answers and serves it (not just: its peer is up)
    online: bool


class HealSet(Wire):
    index: int
    epoch: int
    primary: str | None
    in_sync: int
    min_in_sync: int
    members: list[HealMember]
    # The primary's heal worker: crawling now, and files checked, bytes copied and
    # seconds taken by its current or last crawl.
    running: bool = False
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0


class HealStart(Wire):
    #: also crawl the members in sync, repairing any difference
    full: bool = False


class HealInfo(Wire):
    volume: str
    sets: list[HealSet]


class ReplaceBrick(Wire):
    old: str = Field(
        max_length=4200, description="brick name or HOST:/PATH of the brick to replace"
    )
    new: str = Field(max_length=4200, description="HOST:/PATH of the new, empty brick")
