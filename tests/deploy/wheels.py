"""Wheels for hosts without network: the gfs wheel and a wheelhouse of its dependencies.

The wheelhouse is built outside the test namespaces (PyPI through pip, as any install
here) and kept in a cache folder keyed by the dependency list, so a rerun costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gfs-tests"


PYFUSE3 = ROOT / "scripts" / "pyfuse3"


def wheelhouse() -> Path:
    """A folder with wheels of every dependency of gfs (not gfs itself); pyfuse3's is our
    patched build, as scripts/install.sh installs it."""
    deps: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    patches = b"".join(p.read_bytes() for p in sorted(PYFUSE3.glob("*.patch")))
    key = hashlib.sha256(
        f"{sys.version_info[:2]}\n{sorted(deps)}\n".encode() + patches
    ).hexdigest()[:16]
    house = cache_dir() / f"wheelhouse-{key}"
    if (house / ".complete").exists():
        return house
    tmp = house.with_name(house.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "requirements.txt").write_text("\n".join(deps) + "\n")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(tmp), "-r", str(tmp / "requirements.txt")],
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"pip wheel of the dependencies failed: {r.stderr[-2000:]}")
    # build.sh replaces the plain pyfuse3 wheel pip made with the patched one
    r = subprocess.run(
        ["bash", str(PYFUSE3 / "build.sh"), "--wheel", str(tmp), sys.executable],
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"the patched pyfuse3 wheel failed to build: {r.stderr[-2000:]}")
    (tmp / ".complete").touch()
    shutil.rmtree(house, ignore_errors=True)
    tmp.rename(house)  # whole or not at all: an interrupted build is never taken as done
    return house


def gfs_wheel(dest: Path) -> Path:
    """The gfs wheel of this tree, freshly built."""
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), str(ROOT)],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"pip wheel of gfs failed: {r.stderr[-2000:]}")
    (wheel,) = dest.glob("gfs-*.whl")
    return wheel
