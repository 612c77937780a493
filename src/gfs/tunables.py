"""Process start-up settings shared by the gfs daemons and the client."""

from __future__ import annotations

import os
import sys

# Large gRPC payloads are dominated by first-touch memory: keeping big buffers
# off mmap and untrimmed roughly doubled 1 MiB throughput here (bench/bridge.py).
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=1073741824"


def reexec_with_malloc_tunables() -> None:
    """Re-execute this process once with MALLOC_TUNABLES in GLIBC_TUNABLES.

    glibc reads GLIBC_TUNABLES only at start-up, so a console script sets it by
    re-executing itself before it opens any channel or thread.
    """
    current = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.mmap_threshold" in current or os.environ.get("GFS_NO_REEXEC"):
        return
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = f"{current}:{MALLOC_TUNABLES}" if current else MALLOC_TUNABLES
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except OSError:
        return  # run without the tunables rather than not at all
