"""Lock owners as the bricks keep them: the mount's session id, then the kernel's lock
owner, so a brick drops every lock of a session that ends or expires."""

from __future__ import annotations


def prefix(session: str) -> bytes:
    return session.encode() + b":"


def owner(session: str, lock_owner: int) -> bytes:
    return prefix(session) + lock_owner.to_bytes(8, "big")
