"""gfsd entry point. The management plane (REST, SQL state, transactions) is not built yet."""

from __future__ import annotations

import sys


def main() -> None:
    print(
        "gfsd: error: the management daemon is not implemented in this release; "
        "serve bricks with gfs-brickd and mount them with mount.fuse.gfs HOST:PORT/BRICK",
        file=sys.stderr,
    )
    sys.exit(1)
