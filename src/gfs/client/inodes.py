"""The inode <-> GFID table with kernel lookup counts.

A FUSE inode number is derived from the GFID (its first 63 bits), so hard links
share an inode and a remount sees the same numbers. An entry lives while the
kernel holds a lookup count on it (`forget` brings it to zero).
"""

from __future__ import annotations

import errno
import uuid

ROOT_GFID = uuid.UUID(int=1).bytes
ROOT_INODE = 1
_MASK = (1 << 63) - 1


class UnknownInode(Exception):
    def __init__(self, ino: int) -> None:
        super().__init__(ino)
        self.errno = errno.ESTALE


class InodeTable:
    def __init__(self) -> None:
        self._gfid: dict[int, bytes] = {ROOT_INODE: ROOT_GFID}
        self._ino: dict[bytes, int] = {ROOT_GFID: ROOT_INODE}
        self._count: dict[int, int] = {ROOT_INODE: 1}

    def __len__(self) -> int:
        return len(self._gfid)

    def gfid(self, ino: int) -> bytes:
        g = self._gfid.get(ino)
        if g is None:
            raise UnknownInode(ino)
        return g

    def ino(self, gfid: bytes) -> int:
        """The inode number for `gfid`, without taking a reference."""
        known = self._ino.get(gfid)
        if known is not None:
            return known
        ino = int.from_bytes(gfid[:8], "big") & _MASK
        while ino <= ROOT_INODE or ino in self._gfid:  # a clash of 63-bit prefixes: probe
            ino = (ino + 1) & _MASK
        return ino

    def ref(self, gfid: bytes, n: int = 1) -> int:
        """Count one more kernel lookup of `gfid`; returns its inode number."""
        ino = self.ino(gfid)
        if gfid not in self._ino:
            self._ino[gfid] = ino
            self._gfid[ino] = gfid
            self._count[ino] = 0
        self._count[ino] += n
        return ino

    def forget(self, ino: int, n: int) -> None:
        if ino == ROOT_INODE or ino not in self._count:
            return
        left = self._count[ino] - n
        if left > 0:
            self._count[ino] = left
            return
        del self._count[ino]
        gfid = self._gfid.pop(ino)
        del self._ino[gfid]
