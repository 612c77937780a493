"""Per-inode knowledge of which xattrs an object has, kept for attr-timeout.

Without it every `ls -l` entry costs two round trips (the kernel asks for
`security.selinux` and `system.posix_acl_access`, which almost never exist) and
every write(2) one more (`security.capability`, which the kernel asks for to
drop file capabilities). Two kinds of knowledge:

- the full list of an object's xattr names, which a ReadDir reply carries per
  entry: any name not in it is answered ENODATA, and listxattr from the list;
- single absent names, learned from an ENODATA reply.

Values are never cached: a getxattr of a listed name asks the brick. Knowledge
is trusted for as long as the kernel trusts attributes (attr-timeout), counted
from when the brick was asked, so another mount's change shows within the same
time as a changed mode or size, and attr-timeout=0 keeps every answer exact. A
change made through this mount (setxattr, removexattr, setattr: chmod rewrites
an ACL) forgets the inode's knowledge at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class _Known:
    until: float
    names: frozenset[bytes] | None = None  # every name the object has, when listed
    absent: set[bytes] = field(default_factory=set)


class XattrCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._known: dict[int, _Known] = {}
        # When this mount last changed an xattr (or mode): a reply to a request sent
        # before that may predate the change, so it is not kept.
        self._changed_at = 0.0

    def __len__(self) -> int:
        return len(self._known)

    def _get(self, ino: int) -> _Known | None:
        k = self._known.get(ino)
        if k is not None and k.until < self._clock():
            del self._known[ino]
            return None
        return k

    def known_absent(self, ino: int, name: bytes) -> bool:
        k = self._get(ino)
        if k is None:
            return False
        if k.names is not None:
            return name not in k.names
        return name in k.absent

    def names(self, ino: int) -> list[bytes] | None:
        """All xattr names of `ino`, when known."""
        k = self._get(ino)
        return None if k is None or k.names is None else sorted(k.names)

    def absent(self, ino: int, name: bytes, asked: float) -> None:
        """The brick answered ENODATA for `name`; `asked`: the clock before asking."""
        if self.ttl <= 0 or asked < self._changed_at:
            return
        k = self._get(ino)
        if k is not None and k.names is not None:
            if name not in k.names:
                return  # the list says so already
            k = None  # the list is out of date (a write drops security.capability)
        if k is None:
            k = self._known[ino] = _Known(asked + self.ttl)
        k.absent.add(name)

    def listed(self, ino: int, names: Iterable[bytes], asked: float) -> None:
        """Every xattr name of `ino`, as the brick read them after `asked`."""
        if self.ttl > 0 and asked >= self._changed_at:
            self._known[ino] = _Known(asked + self.ttl, frozenset(names))

    def changed(self, ino: int) -> None:
        """This mount changes `ino`'s xattrs: call before sending and after the reply."""
        self._changed_at = self._clock()
        self._known.pop(ino, None)

    def forget(self, ino: int) -> None:
        """The kernel forgot `ino`."""
        self._known.pop(ino, None)
