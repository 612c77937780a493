"""The cluster's state: SQLAlchemy 2 models. Changes to them are Alembic migrations
(store/migrations); a test checks the migrated schema equals these models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Peer(Base):
    __tablename__ = "peers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    node_id: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(300), unique=True)
    zone: Mapped[str] = mapped_column(String(64), default="")
    online: Mapped[bool] = mapped_column(default=True)
    last_seen: Mapped[datetime | None] = mapped_column(default=None)
    created: Mapped[datetime] = mapped_column(default=now)
    roots: Mapped[list[BrickRoot]] = relationship(
        back_populates="peer", cascade="all, delete-orphan", order_by="BrickRoot.path"
    )


class BrickRoot(Base):
    __tablename__ = "brick_roots"
    __table_args__ = (UniqueConstraint("peer_id", "path"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    peer_id: Mapped[str] = mapped_column(ForeignKey("peers.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(4096))
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    free_bytes: Mapped[int] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger)
    peer: Mapped[Peer] = relationship(back_populates="roots")


class Volume(Base):
    __tablename__ = "volumes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="created")
    replica_count: Mapped[int]
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    template: Mapped[str | None] = mapped_column(String(64), default=None)
    created: Mapped[datetime] = mapped_column(default=now)
    version: Mapped[int] = mapped_column(default=1)
    replica_sets: Mapped[list[ReplicaSet]] = relationship(
        back_populates="volume", cascade="all, delete-orphan", order_by="ReplicaSet.index"
    )
    options: Mapped[list[VolumeOption]] = relationship(
        cascade="all, delete-orphan", order_by="VolumeOption.key"
    )


class ReplicaSet(Base):
    __tablename__ = "replica_sets"
    __table_args__ = (UniqueConstraint("volume_id", "index"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"))
    index: Mapped[int]
    epoch: Mapped[int] = mapped_column(default=1)
    primary_brick_id: Mapped[str | None] = mapped_column(String(36), default=None)
    min_in_sync: Mapped[int]
    volume: Mapped[Volume] = relationship(back_populates="replica_sets")
    bricks: Mapped[list[Brick]] = relationship(
        back_populates="replica_set", cascade="all, delete-orphan", order_by="Brick.position"
    )


class Brick(Base):
    __tablename__ = "bricks"
    __table_args__ = (UniqueConstraint("peer_id", "path"), Index("ix_bricks_volume", "volume_id"))
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"))
    replica_set_id: Mapped[int] = mapped_column(ForeignKey("replica_sets.id", ondelete="CASCADE"))
    position: Mapped[int]
    # RESTRICT: a peer that holds bricks cannot be removed.
    peer_id: Mapped[str] = mapped_column(ForeignKey("peers.id", ondelete="RESTRICT"))
    root: Mapped[str] = mapped_column(String(4096))
    path: Mapped[str] = mapped_column(String(4096))
    name: Mapped[str] = mapped_column(String(128), unique=True)
    in_sync: Mapped[bool] = mapped_column(default=True)
    replica_set: Mapped[ReplicaSet] = relationship(back_populates="bricks")
    peer: Mapped[Peer] = relationship()


class VolumeOption(Base):
    __tablename__ = "volume_options"
    volume_id: Mapped[str] = mapped_column(
        ForeignKey("volumes.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Template(Base):
    __tablename__ = "templates"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (Index("ix_transactions_state", "state"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    volume: Mapped[str | None] = mapped_column(String(64), default=None)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    steps: Mapped[list[Any]] = mapped_column(default=list)
    done: Mapped[int] = mapped_column(default=0)
    #: What each done step's `do` reported it made (index = step), passed to its undo.
    results: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    owner: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(default=now)
    updated: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(default=now, index=True)
    kind: Mapped[str] = mapped_column(String(64))
    volume: Mapped[str | None] = mapped_column(String(64), default=None)
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column(default=now)


class Webhook(Base):
    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    created: Mapped[datetime] = mapped_column(default=now)
    #: The last event id delivered (or given up on) to this hook.
    last_event: Mapped[int] = mapped_column(BigInteger, default=0)


class Credential(Base):
    """A client certificate gfsd issued for some volumes, and its bearer token (hash)
    for reading their layout. Kept after revocation: the bricks must refuse its
    certificate until it expires."""

    __tablename__ = "credentials"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    volumes: Mapped[list[Any]] = mapped_column(default=list)
    #: SHA-256 of the certificate (DER), hex: what the bricks' revocation list holds
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    serial: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created: Mapped[datetime] = mapped_column(default=now)
    not_after: Mapped[datetime]
    revoked: Mapped[datetime | None] = mapped_column(default=None)
