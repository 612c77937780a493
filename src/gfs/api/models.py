"""Wire types of gfsd's REST API (`/v1`). Handlers live in gfs_mgmt.api; these types
are the contract, shared by the server, the CLI and the mount helper."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime as _datetime
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    StrictStr,
    field_validator,
)


def _utc(d: _datetime) -> str:
    # The store keeps naive UTC; the wire always says so (RFC 3339 with an offset).
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).isoformat()


datetime = Annotated[_datetime, PlainSerializer(_utc, return_type=str, when_used="json")]

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
VolumeName = Annotated[str, Field(pattern=NAME_RE, description="1-64 of A-Z a-z 0-9 _ . -")]
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
#: The largest size anything takes: what a signed 64-bit column or quota holds (8 EiB).
MAX_SIZE = 2**63 - 1
#: A size on the wire: bytes, or a number with a unit ("10GiB"); never a bool.
Size = StrictInt | StrictStr


def parse_size(text: str | int) -> int:
    """'1GiB' -> 1073741824, '500M' -> 500000000, 4096 -> 4096; ValueError otherwise.
    Decimals are exact ('1.5KiB' -> 1536); fractions of a byte are dropped."""
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise ValueError(f"size {text!r}: expected bytes or a string like 10GiB")
    shown = str(text) if len(str(text)) <= 40 else str(text)[:40] + "…"
    too_large = ValueError(f"size {shown}: larger than the limit of {MAX_SIZE} bytes (8 EiB)")
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.match(text)
        if not m:
            raise ValueError(f"size {shown!r}: expected a number with an optional unit like 10GiB")
        if len(m.group(1)) > 40:  # never build a huge number from the input
            raise too_large
        unit = (m.group(2) or "").upper().removesuffix("B")
        factor = 1024 ** " KMGTP".index(unit[0]) if unit.endswith("I") else _UNITS[unit]
        value = int(Fraction(m.group(1)) * factor)
    if value <= 0:
        raise ValueError("size must be positive")
    if value > MAX_SIZE:
        raise too_large
    return value


#: NAME_MAX: the longest file name in bytes.
FOLDER_NAME_MAX = 255


def brick_folder_error(name: str) -> str | None:
    """Why `name` cannot be a brick folder (a folder directly under a brick root), or
    None. gfs-brickd enforces it; gfsd checks it before it records any transaction."""
    if not name or name.startswith(".") or "/" in name or "\0" in name:
        return f"bad brick folder name {name!r}: empty, starts with '.', or has '/' or NUL"
    if len(name.encode(errors="surrogateescape")) > FOLDER_NAME_MAX:
        return f"brick folder name too long (more than {FOLDER_NAME_MAX} bytes)"
    return None


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Request(Wire):
    """A request body: strict types, so that `true` is no size and `"3"` no replica."""

    model_config = ConfigDict(extra="forbid", strict=True)


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


class PeerAdd(Request):
    address: str = Field(description="HOST:PORT of the peer's gfs-brickd", max_length=300)


class Peer(Wire):
    id: str
    name: str
    address: str
    zone: str
    online: bool
    roots: list[RootInfo]
    last_seen: datetime | None = None


class VolumeCreate(Request):
    name: VolumeName
    replica: int = Field(3, ge=1, le=16)
    bricks: list[str] | None = Field(
        None,
        description="explicit bricks 'PEER:/path', 'HOST:PORT:/path' or 'HOST:/path' (when one"
        " peer runs on HOST): exactly `replica` of them (one replica set)",
    )
    size: Size | None = Field(None, description="smart create: bytes or '10GiB'")
    zones: list[str] | None = None
    template: str | None = None
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        # Before the type check: one clear message for `true`, 1.5 or "lots".
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


class OptionsSet(Request):
    options: dict[str, str] = Field(min_length=1)


class Template(Wire):
    name: str
    description: str
    options: dict[str, str]


class Expand(Request):
    size: Size

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        parse_size(v)
        return v


class EventOut(Wire):
    id: int
    ts: datetime
    kind: str
    volume: str | None
    message: str


class WebhookAdd(Request):
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048)


class WebhookOut(Wire):
    id: str
    url: str
    created: datetime


class ReplicaShrink(Request):
    """A primary reports members that failed a mutation (compare-and-set on `epoch`)."""

    epoch: int = Field(ge=1)
    bricks: list[str] = Field(min_length=1, max_length=16)
    reporter: str = Field(max_length=128)


class ReplicaRejoin(Request):
    """A primary reports a member healed and identical (compare-and-set on `epoch`)."""

    epoch: int = Field(ge=1)
    brick: str = Field(max_length=128)
    reporter: str = Field(max_length=128)


class ReplicaReconcile(Request):
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


class HealStart(Request):
    #: also crawl the members in sync, repairing any difference
    full: bool = False


class HealInfo(Wire):
    volume: str
    sets: list[HealSet]


class ReplaceBrick(Request):
    old: str = Field(
        max_length=4200, description="brick name or HOST:/PATH of the brick to replace"
    )
    new: str = Field(max_length=4200, description="HOST:/PATH of the new, empty brick")


class CredentialCreate(Request):
    """A client certificate for `volumes` (and a token to read their layout)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", description="1-63 chars")
    volumes: list[VolumeName] = Field(min_length=1, max_length=64)


class Credential(Wire):
    name: str
    volumes: list[str]
    #: SHA-256 of the certificate (DER), hex: what the bricks refuse once revoked
    fingerprint: str
    serial: str
    created: datetime
    not_after: datetime
    revoked: datetime | None = None


class CredentialIssued(Credential):
    """Given once, by the create: gfsd keeps neither the key nor the token."""

    ca: str
    cert: str
    key: str
    token: str
