"""`cp` of a file within a replica-3 volume (copy_file_range, done on the bricks) against
`cat src > dst` (read and write through the client) and the same on the local disk.

    python bench/cp_within.py [--mib 1024] [--dir /tmp/gfs-cp-bench]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.replicas import demo_cluster, mount


def timed(cmd: str) -> float:
    subprocess.run(["sync"], check=True)
    t = time.monotonic()
    subprocess.run(cmd, check=True, shell=True)
    subprocess.run(["sync"], check=True)
    return time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/gfs-cp-bench"))
    a = ap.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    a.dir.mkdir(parents=True)
    size = a.mib << 20
    with demo_cluster(a.dir, size=f"{4 * a.mib + 256}MiB") as c:
        m = mount(c, a.dir).start()
        try:
            local = a.dir / "local"
            local.mkdir()
            for name, d in (("gfs", m.mountpoint), ("local", local)):
                subprocess.run(
                    ["dd", "if=/dev/urandom", f"of={d}/src", "bs=1M", f"count={a.mib}"],
                    check=True,
                    capture_output=True,
                )
                for how, cmd in (("cp", f"cp {d}/src {d}/dst"), ("cat", f"cat {d}/src > {d}/dst2")):
                    t = timed(cmd)
                    print(f"target={name} how={how} MB/s={size / t / 1e6:.0f} seconds={t:.2f}")
                subprocess.run(["cmp", f"{d}/src", f"{d}/dst"], check=True)
        finally:
            m.stop()


if __name__ == "__main__":
    main()
