"""Linux system calls the os module lacks: renameat2, fallocate, utimensat."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10
#: Modes done for real; anything else is EOPNOTSUPP (never success without effect).
FALLOC_MODES = frozenset(
    {
        0,
        FALLOC_FL_KEEP_SIZE,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
        FALLOC_FL_ZERO_RANGE,
        FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
    }
)

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_SYMLINK_NOFOLLOW = 0x100

_SYS_RENAMEAT2 = 316  # x86_64
_renameat2 = getattr(_libc, "renameat2", None)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _check(rc: int) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def renameat2(src_dir: int, src: bytes, dst_dir: int, dst: bytes, flags: int) -> None:
    if _renameat2 is not None:
        _check(_renameat2(src_dir, src, dst_dir, dst, ctypes.c_uint(flags)))
    else:  # glibc < 2.28
        _check(_libc.syscall(_SYS_RENAMEAT2, src_dir, src, dst_dir, dst, ctypes.c_uint(flags)))


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    _check(
        _libc.fallocate(
            fd, ctypes.c_int(mode), ctypes.c_longlong(offset), ctypes.c_longlong(length)
        )
    )


def _ts(ns: int | None) -> _Timespec:
    if ns is None:
        return _Timespec(0, UTIME_OMIT)
    sec, nsec = divmod(ns, 1_000_000_000)
    return _Timespec(sec, nsec)


def utimensat(dir_fd: int, name: bytes, atime_ns: int | None, mtime_ns: int | None) -> None:
    """Set times without following a final symlink; None leaves that time alone."""
    times = (_Timespec * 2)(_ts(atime_ns), _ts(mtime_ns))
    _check(_libc.utimensat(dir_fd, name, times, AT_SYMLINK_NOFOLLOW))


def futimens(fd: int, atime_ns: int | None, mtime_ns: int | None) -> None:
    times = (_Timespec * 2)(_ts(atime_ns), _ts(mtime_ns))
    _check(_libc.futimens(fd, times))
