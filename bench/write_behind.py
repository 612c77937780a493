"""Write-behind off and on, one after the other on one replica-3 cluster (tests/replicas.py,
default mount timeouts): N 4 KiB random writes + fsync, N/4 create+write 4 KiB+close,
32 MiB in 128 KiB writes + fsync; py-spy records the mount process during each mode
(raw, GIL-holding samples, into OUT_DIR/randwrite-MODE.txt).

    python bench/write_behind.py OUT_DIR [N]      (root; py-spy in the venv)
"""

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.replicas import demo_cluster, mount

PYSPY = str(Path(sys.executable).parent / "py-spy")
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
with tempfile.TemporaryDirectory(dir="/tmp") as td, demo_cluster(Path(td)) as c:
    for wb in ("off", "on"):
        m = mount(c, Path(td), f"m{wb}")
        m.options = m.options.replace(",attr-timeout=0,entry-timeout=0", "") + f",write-behind={wb}"
        m.start(timeout=120)
        try:
            root = m.mountpoint
            f = root / f"rand-{wb}"
            with open(f, "wb") as fh:
                fh.truncate(16 << 20)
            spy = subprocess.Popen(
                [
                    PYSPY,
                    "record",
                    "-o",
                    str(out / f"randwrite-{wb}.txt"),
                    "-f",
                    "raw",
                    "-r",
                    "50",
                    "--gil",
                    "--pid",
                    str(m.proc.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
            rnd = random.Random(1)
            fd = os.open(f, os.O_WRONLY)
            t = time.monotonic()
            for _ in range(N):
                os.pwrite(fd, rnd.randbytes(4096), rnd.randrange(4096) * 4096)
            os.fsync(fd)
            os.close(fd)
            dt = time.monotonic() - t
            print(
                f"write-behind={wb} 4KiB random write: {N / dt:.0f} IOPS ({N} writes + fsync, {dt:.2f} s)",
                flush=True,
            )
            d = root / f"small-{wb}"
            d.mkdir()
            t = time.monotonic()
            for i in range(N // 4):
                with open(d / f"f{i}", "wb") as fh:
                    fh.write(b"x" * 4096)
            dt = time.monotonic() - t
            print(
                f"write-behind={wb} create+write 4KiB+close: {dt / (N // 4) * 1000:.1f} ms each ({N // 4} files)",
                flush=True,
            )
            fd = os.open(root / f"seq-{wb}", os.O_CREAT | os.O_WRONLY, 0o644)
            t = time.monotonic()
            blk = os.urandom(128 << 10)
            for _ in range(256):
                os.write(fd, blk)
            os.fsync(fd)
            os.close(fd)
            dt = time.monotonic() - t
            print(
                f"write-behind={wb} sequential write 32 MiB in 128 KiB writes + fsync: {32 / dt:.1f} MiB/s",
                flush=True,
            )
            spy.send_signal(2)
            spy.wait(30)
        finally:
            m.stop()
