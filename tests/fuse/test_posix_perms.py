"""Permission checks as an unprivileged user, identical on a local directory and on gfs.

The checks run in a child process that enters the directory as root, then drops
to nobody (uid/gid 65534, no supplementary groups): pytest's temp directories
are not reachable by other users, the cwd is.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

NOBODY = 65534

PRELUDE = """
import errno, json, os, stat, sys
def err(f, *a, **kw):
    try:
        f(*a, **kw)
        return 0
    except OSError as e:
        return errno.errorcode[e.errno]
def touch(p, mode=0o666):
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, mode))
"""


def _python_for_nobody() -> str:
    """An interpreter nobody may execute (the venv's may live under root's 0700 home)."""
    for cand in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if not cand:
            continue
        real = Path(os.path.realpath(cand))
        if all(p.stat().st_mode & 0o001 for p in real.parents) and real.stat().st_mode & 0o001:
            return cand
    pytest.fail("no python3 executable by uid 65534")


def as_nobody(cwd: Path, code: str, umask: int = 0o022) -> Any:
    """Run `code` as uid/gid 65534 in `cwd`; it must assign `result`, which is returned."""
    script = PRELUDE + code + "\nprint(json.dumps(result))\n"
    r = subprocess.run(
        [_python_for_nobody(), "-I", "-S", "-c", script],
        cwd=cwd,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        umask=umask,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_private_dir(fsroot: Path) -> None:
    os.mkdir(fsroot / "priv")
    os.chmod(fsroot / "priv", 0o700)
    (fsroot / "priv" / "f").write_bytes(b"secret")
    result = as_nobody(
        fsroot,
        """
result = [err(os.listdir, "priv"), err(touch, "priv/new"), err(os.stat, "priv/f"),
          err(os.mkdir, "priv/d"), err(os.unlink, "priv/f"), err(os.chdir, "priv")]
""",
    )
    assert result == ["EACCES"] * 6
    assert os.listdir(fsroot / "priv") == ["f"]


def test_read_only_file(fsroot: Path) -> None:
    p = fsroot / "f"
    p.write_bytes(b"root data")
    os.chmod(p, 0o644)
    result = as_nobody(
        fsroot,
        """
result = [err(os.open, "f", os.O_WRONLY), err(os.open, "f", os.O_RDWR),
          err(os.open, "f", os.O_WRONLY | os.O_TRUNC), err(os.truncate, "f", 0),
          open("f", "rb").read().decode(), err(os.utime, "f", None),
          err(os.setxattr, "f", "user.x", b"1"), err(touch, "new")]
""",
    )
    assert result == ["EACCES"] * 4 + ["root data", "EACCES", "EACCES", "EACCES"]
    assert p.read_bytes() == b"root data"


def test_create_owner_and_umask(fsroot: Path) -> None:
    os.mkdir(fsroot / "pub")
    os.chmod(fsroot / "pub", 0o777)
    result = as_nobody(
        fsroot,
        """
touch("pub/f", 0o666)
os.mkdir("pub/d", 0o777)
os.symlink("f", "pub/l")
os.mkfifo("pub/p", 0o666)
result = {n: list(os.lstat("pub/" + n)[:]) for n in ("f", "d", "l", "p")}
""",
        umask=0o027,
    )
    for name, want in (("f", 0o640), ("d", 0o750), ("p", 0o640)):
        st = os.stat(fsroot / "pub" / name)
        assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY), name
        assert stat.S_IMODE(st.st_mode) == want, name
        assert result[name][stat.ST_MODE] == st.st_mode
    lst = os.lstat(fsroot / "pub" / "l")
    assert (lst.st_uid, lst.st_gid) == (NOBODY, NOBODY)


def test_sticky_dir(fsroot: Path) -> None:
    t = fsroot / "tmp"
    os.mkdir(t)
    os.chmod(t, 0o1777)
    (t / "rootfile").write_bytes(b"")
    os.chmod(t / "rootfile", 0o666)
    result = as_nobody(
        fsroot,
        """
touch("tmp/mine")
result = [err(os.unlink, "tmp/rootfile"), err(os.rename, "tmp/rootfile", "tmp/x"),
          err(os.rename, "tmp/mine", "tmp/rootfile"), err(os.unlink, "tmp/mine"),
          open("tmp/rootfile", "w").write("ok")]
""",
    )
    assert result == ["EPERM", "EPERM", "EPERM", 0, 2]
    assert sorted(os.listdir(t)) == ["rootfile"]
    assert (t / "rootfile").read_bytes() == b"ok"


def test_not_owner(fsroot: Path) -> None:
    p = fsroot / "f"
    p.write_bytes(b"x")
    os.chmod(p, 0o666)
    result = as_nobody(
        fsroot,
        """
result = [err(os.chmod, "f", 0o777), err(os.chown, "f", 65534, 65534),
          err(os.utime, "f", ns=(1, 1)), err(os.utime, "f", None)]
""",
    )
    # Writable by all: setting the times to "now" is allowed, explicit times are not.
    assert result == ["EPERM", "EPERM", "EPERM", 0]
    st = os.stat(p)
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o666, 0)


def test_owner_may_chmod_not_chown(fsroot: Path) -> None:
    os.mkdir(fsroot / "pub")
    os.chmod(fsroot / "pub", 0o777)
    (fsroot / "pub" / "g").write_bytes(b"")
    os.chown(fsroot / "pub" / "g", NOBODY, 100)
    result = as_nobody(
        fsroot,
        """
touch("pub/f", 0o644)
result = [err(os.chmod, "pub/f", 0o600), err(os.chown, "pub/f", 0, -1),
          err(os.chown, "pub/f", -1, 0), err(os.chmod, "pub/f", 0o2755),
          err(os.chmod, "pub/g", 0o2755)]
result += [oct(os.stat("pub/" + n).st_mode & 0o7777) for n in ("f", "g")]
""",
    )
    # S_ISGID for a group the caller is not in is silently dropped.
    assert result == [0, "EPERM", "EPERM", 0, 0, "0o2755", "0o755"]


def test_setgid_dir_inheritance_root(fsroot: Path) -> None:
    d = fsroot / "sg"
    os.mkdir(d)
    os.chown(d, -1, 100)
    os.chmod(d, 0o2775)
    (d / "f").write_bytes(b"")
    os.mkdir(d / "sub")
    st_f, st_sub = os.stat(d / "f"), os.stat(d / "sub")
    assert st_f.st_gid == 100
    assert st_sub.st_gid == 100
    assert st_sub.st_mode & stat.S_ISGID
    assert not st_f.st_mode & stat.S_ISGID
    os.mkdir(d / "sub" / "deeper")
    st = os.stat(d / "sub" / "deeper")
    assert st.st_gid == 100
    assert st.st_mode & stat.S_ISGID


def test_setgid_dir_inheritance_nobody(fsroot: Path) -> None:
    d = fsroot / "sg"
    os.mkdir(d)
    os.chown(d, -1, 100)
    os.chmod(d, 0o2777)
    as_nobody(
        fsroot,
        """
touch("sg/f")
os.mkdir("sg/sub")
result = 0
""",
    )
    st_f, st_sub = os.stat(d / "f"), os.stat(d / "sub")
    assert (st_f.st_uid, st_f.st_gid) == (NOBODY, 100)
    assert (st_sub.st_uid, st_sub.st_gid) == (NOBODY, 100)
    assert st_sub.st_mode & stat.S_ISGID


# -- POSIX ACLs: enforced by the kernel, default ACLs inherited on create ---------------------


def setfacl(*args: str | Path) -> None:
    subprocess.run(["setfacl", *map(str, args)], check=True, timeout=30)


def getfacl(p: Path) -> str:
    """The ACL as `getfacl -c` prints it (no header line naming the file)."""
    return subprocess.run(
        ["getfacl", "-cp", str(p)], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_acl_named_user_denied(fsroot: Path) -> None:
    p = fsroot / "f"
    p.write_bytes(b"data")
    os.chmod(p, 0o644)
    assert as_nobody(fsroot, 'result = open("f", "rb").read().decode()') == "data"
    setfacl("-m", "u:nobody:---", p)
    result = as_nobody(fsroot, 'result = [err(os.open, "f", os.O_RDONLY), err(os.stat, "f")]')
    assert result == ["EACCES", 0]
    # The group class bits are the ACL's mask now (r-- from the old group bits).
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644
    assert getfacl(p) == "user::rw-\nuser:nobody:---\ngroup::r--\nmask::r--\nother::r--\n\n"
    setfacl("-x", "u:nobody", p)
    assert as_nobody(fsroot, 'result = open("f", "rb").read().decode()') == "data"


def test_acl_named_user_granted(fsroot: Path) -> None:
    p = fsroot / "f"
    p.write_bytes(b"secret")
    os.chmod(p, 0o600)
    assert as_nobody(fsroot, 'result = err(os.open, "f", os.O_RDONLY)') == "EACCES"
    setfacl("-m", "u:nobody:r", p)
    result = as_nobody(
        fsroot, 'result = [open("f", "rb").read().decode(), err(os.open, "f", os.O_WRONLY)]'
    )
    assert result == ["secret", "EACCES"]
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640  # the mask shows as group bits


def test_default_acl_inherited_and_umask(fsroot: Path) -> None:
    d, plain = fsroot / "d", fsroot / "plain"
    d.mkdir(mode=0o755)
    plain.mkdir()
    os.chmod(plain, 0o777)
    setfacl("-m", "u:nobody:rwx", d)
    setfacl("-d", "-m", "u:nobody:rwx", d)
    result = as_nobody(
        fsroot,
        """
for top in ("d", "plain"):
    touch(top + "/f", 0o666)
    os.mkdir(top + "/sub", 0o777)
    os.mkfifo(top + "/p", 0o666)
    touch(top + "/sub/g", 0o666)
result = {p: oct(stat.S_IMODE(os.stat(p).st_mode))
          for p in ("d/f", "d/sub", "d/p", "d/sub/g", "plain/f", "plain/sub", "plain/p")}
""",
        umask=0o077,
    )
    # With a default ACL the umask is not applied: the ACL masked by the requested mode.
    assert result == {
        "d/f": "0o664",
        "d/sub": "0o775",
        "d/p": "0o664",
        "d/sub/g": "0o664",
        "plain/f": "0o600",
        "plain/sub": "0o700",
        "plain/p": "0o600",
    }
    file_acl = (
        "user::rw-\nuser:nobody:rwx\t#effective:rw-\ngroup::r-x\t#effective:r--\n"
        "mask::rw-\nother::r--\n\n"
    )
    assert getfacl(d / "f") == file_acl
    assert getfacl(d / "sub" / "g") == file_acl
    access = "user::rwx\nuser:nobody:rwx\ngroup::r-x\nmask::rwx\nother::r-x\n"
    default = "".join("default:" + line + "\n" for line in access.splitlines())
    assert getfacl(d / "sub") == access + default + "\n"
    assert getfacl(plain / "f") == "user::rw-\ngroup::---\nother::---\n\n"
    assert "system.posix_acl_default" not in os.listxattr(d / "f")


def test_chmod_updates_acl_mask(fsroot: Path) -> None:
    os.mkdir(fsroot / "pub")
    os.chmod(fsroot / "pub", 0o755)
    p = fsroot / "pub" / "f"
    p.write_bytes(b"x")
    os.chmod(p, 0o644)
    setfacl("-m", "u:nobody:rw", p)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o664
    assert as_nobody(fsroot, 'result = os.write(os.open("pub/f", os.O_WRONLY), b"y")') == 1
    os.chmod(p, 0o640)
    assert "mask::r--" in getfacl(p).splitlines()
    assert "user:nobody:rw-\t#effective:r--" in getfacl(p).splitlines()
    result = as_nobody(
        fsroot, 'result = [err(os.open, "pub/f", os.O_WRONLY), open("pub/f", "rb").read().decode()]'
    )
    assert result == ["EACCES", "y"]
    setfacl("-m", "m::rw", p)  # and the mask back into the mode
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o660
