"""Command line and `-o` options of mount.fuse.gfs, validated before anything starts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from gfs.rpc.channel import parse_address

#: Passed through to the kernel mount as they are.
KERNEL_FLAGS = frozenset(
    {
        "ro",
        "rw",
        "suid",
        "nosuid",
        "dev",
        "nodev",
        "exec",
        "noexec",
        "atime",
        "noatime",
        "sync",
        "async",
        "dirsync",
    }
)
#: Accepted for fstab and mount(8), meaningless to the client itself.
IGNORED = frozenset(
    {
        "defaults",
        "_netdev",
        "auto",
        "noauto",
        "user",
        "nouser",
        "users",
        "nofail",
        "owner",
        "group",
        "relatime",
        "norelatime",
        "strictatime",
        "lazytime",
        "nolazytime",
        "loud",
        "silent",
    }
)
IGNORED_PREFIXES = ("x-", "comment=")
LOG_LEVELS = ("debug", "info", "warning", "error")
BRICK_NAME = re.compile(r"^[^/\s]{1,128}$")


class UsageError(Exception):
    """Bad command line: one line to the user, exit code 2."""


DEFAULT_GFSD_PORT = 24100
DEFAULT_TOKEN_FILE = "/var/lib/gfs/admin.token"


@dataclass
class MountOptions:
    address: str  # gfs-brickd HOST:PORT (brick mode) or gfsd HOST:PORT (volume mode)
    brick: str  # brick name, or "" in volume mode
    mountpoint: str
    volume: str = ""
    token_file: str | None = None
    #: identity folder (ca.crt, tls.crt, tls.key of a client certificate): mutual TLS
    tls_dir: str | None = None
    #: a volume credential folder (gfs volume credential create): its certificate is the
    #: TLS identity, its `token` reads the volume's layout from gfsd (no admin token)
    credential: str | None = None
    backup_servers: list[str] = field(default_factory=list)
    #: Options given on the command line; a volume's own options fill in the rest.
    explicit: set[str] = field(default_factory=set)
    foreground: bool = False
    attr_timeout: float = 1.0
    entry_timeout: float = 1.0
    rpc_timeout: float = 30.0
    #: seconds between the session announcements to the bricks (client/session.py)
    keepalive: float = 10.0
    writeback: bool = False
    #: buffer small writes in the client (client/writebehind.py)
    write_behind: bool = False
    read_ahead_kib: int = 1024
    log_file: str | None = None
    log_level: str = "info"
    kernel: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        if self.volume:
            return f"{self.address}:/{self.volume}"
        return f"{self.address}/{self.brick}"


VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_volume_source(text: str) -> tuple[str, str]:
    """`HOST[:PORT]:/VOLUME` -> (HOST:PORT of gfsd, VOLUME)."""
    server, _, volume = text.partition(":/")
    if not server:
        raise UsageError(f"source {text!r}: missing the gfsd host before ':/'")
    if not VOLUME_NAME.match(volume):
        raise UsageError(f"source {text!r}: bad volume name {volume!r}")
    if server.count(":") == 0 or server.endswith("]"):
        server = f"{server}:{DEFAULT_GFSD_PORT}"
    try:
        parse_address(server)
    except ValueError as e:
        raise UsageError(f"source {text!r}: {e}") from e
    return server, volume


def parse_source(text: str) -> tuple[str, str]:
    """`[brick=]HOST:PORT/BRICK` -> (HOST:PORT, BRICK)."""
    spec = text.removeprefix("brick=")
    addr, sep, brick = spec.partition("/")
    if not sep:
        raise UsageError(f"source {text!r}: expected [brick=]HOST:PORT/BRICK")
    if not brick:
        raise UsageError(f"source {text!r}: missing brick name after '/'")
    if not BRICK_NAME.match(brick):
        raise UsageError(f"source {text!r}: bad brick name {brick!r}")
    try:
        parse_address(addr)
    except ValueError as e:
        raise UsageError(f"source {text!r}: {e}") from e
    return addr, brick


def _seconds(key: str, value: str, minimum: float) -> float:
    try:
        v = float(value)
    except ValueError:
        raise UsageError(f"option {key}={value!r}: expected a number of seconds") from None
    if not math.isfinite(v) or v < minimum:
        raise UsageError(f"option {key}={value!r}: must be a number >= {minimum:g}")
    return v


def apply_option(opts: MountOptions, item: str) -> None:
    key, eq, value = item.partition("=")
    opts.explicit.add(key)
    if item in KERNEL_FLAGS:
        opts.kernel.append(item)
    elif item in IGNORED or item.startswith(IGNORED_PREFIXES):
        pass
    elif key == "attr-timeout" and eq:
        opts.attr_timeout = _seconds(key, value, 0)
    elif key == "entry-timeout" and eq:
        opts.entry_timeout = _seconds(key, value, 0)
    elif key == "rpc-timeout" and eq:
        opts.rpc_timeout = _seconds(key, value, 0.1)
    elif key == "keepalive" and eq:
        opts.keepalive = _seconds(key, value, 0.1)
        if opts.keepalive > 3600:
            raise UsageError(f"option keepalive={value!r}: at most 3600 seconds")
    elif key == "writeback" and eq:
        if value not in ("on", "off"):
            raise UsageError(f"option writeback={value!r}: use on or off")
        opts.writeback = value == "on"
    elif key == "write-behind" and eq:
        if value not in ("on", "off"):
            raise UsageError(f"option write-behind={value!r}: use on or off")
        opts.write_behind = value == "on"
    elif key == "read-ahead" and eq:
        if not value.isdigit() or not 4 <= int(value) <= 65536:
            raise UsageError(f"option read-ahead={value!r}: KiB between 4 and 65536")
        opts.read_ahead_kib = int(value)
    elif key == "backup-servers" and eq and value:
        for server in value.split("/"):
            if server.count(":") == 0:
                server = f"{server}:{DEFAULT_GFSD_PORT}"
            try:
                parse_address(server)
            except ValueError as e:
                raise UsageError(f"option backup-servers: {e}") from None
            opts.backup_servers.append(server)
    elif key == "token-file" and eq and value:
        opts.token_file = value
    elif key == "tls-dir" and eq and value:
        opts.tls_dir = value
    elif key == "credential" and eq and value:
        opts.credential = value
    elif key == "log-file" and eq and value:
        opts.log_file = value
    elif key == "log-level" and eq:
        if value not in LOG_LEVELS:
            raise UsageError(f"option log-level={value!r}: use one of {', '.join(LOG_LEVELS)}")
        opts.log_level = value
    else:
        raise UsageError(f"unknown mount option {item!r}")


USAGE = (
    "usage: mount.fuse.gfs HOST[:PORT]:/VOLUME|[brick=]HOST:PORT/BRICK MOUNTPOINT"
    " [-f] [-o OPTION[,OPTION...]]"
)


def parse_argv(argv: list[str]) -> MountOptions:
    positional: list[str] = []
    raw_opts: list[str] = []
    foreground = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-o":
            if i + 1 == len(argv):
                raise UsageError("-o needs a value")
            raw_opts.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("-o") and len(a) > 2:
            raw_opts.append(a[2:])
        elif a == "-f":
            foreground = True
        elif a in ("-n", "-s", "-v"):  # passed by mount(8): no mtab, sloppy, verbose
            pass
        elif a == "-t":  # mount(8) may pass the type
            i += 1
        elif a in ("-h", "--help"):
            raise UsageError(USAGE)
        elif a.startswith("-"):
            raise UsageError(f"unknown flag {a!r}; {USAGE}")
        else:
            positional.append(a)
        i += 1
    if len(positional) != 2:
        raise UsageError(USAGE)
    src = positional[0]
    if ":/" in src and not src.startswith("brick="):
        address, volume = parse_volume_source(src)
        brick = ""
    else:
        (address, brick), volume = parse_source(src), ""
    opts = MountOptions(
        address=address,
        brick=brick,
        mountpoint=positional[1],
        foreground=foreground,
        volume=volume,
    )
    for group in raw_opts:
        for item in group.split(","):
            if item:
                apply_option(opts, item)
    if opts.credential:
        if opts.token_file or opts.tls_dir:
            raise UsageError("option credential= replaces token-file= and tls-dir=: give one")
        opts.tls_dir = opts.credential
    return opts


#: Volume option (gfsd) -> the mount option it sets when not given on the command line.
VOLUME_OPTIONS = {
    "client.attr-timeout": "attr-timeout",
    "client.entry-timeout": "entry-timeout",
    "client.writeback": "writeback",
    "client.read-ahead-kib": "read-ahead",
    "performance.write-behind": "write-behind",
}


def apply_volume_options(opts: MountOptions, values: dict[str, str]) -> None:
    """Take the volume's client options, except those the command line set."""
    for vkey, mkey in VOLUME_OPTIONS.items():
        if vkey in values and mkey not in opts.explicit:
            value = values[vkey]
            if mkey == "read-ahead":
                value = str(int(float(value)))
            apply_option(opts, f"{mkey}={value}")
