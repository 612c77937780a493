"""The documented table of volume options: names, types, defaults, validation,
when a change takes effect, and the built-in templates (named groups of options).
docs/options.md is generated from this table by `python -m gfs_mgmt.volume.options`.

An option is in the table only once its effect is built: a setting that changes
nothing is refused (`unknown_option`) rather than stored."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gfs import addrs
from gfs.errors import GfsError

#: When a changed value takes effect.
LIVE = "live"  # pushed to the bricks of a started volume before `volume set` returns
NEXT_MOUNT = "next mount"  # read by mount.fuse.gfs when it mounts; mounts made before keep theirs
APPLIES = (LIVE, NEXT_MOUNT)


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # "bool", "int", "float", "enum", "string"
    default: str
    help: str
    applies: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: str) -> str:
        """The normalized value, or GfsError(invalid) saying what is accepted."""
        v = value.strip()
        bad = GfsError(
            "invalid",
            "bad_option_value",
            f"option {self.name}={value!r}: expected {self.describe()}",
            option=self.name,
        )
        if self.kind == "bool":
            table = {
                "on": "on",
                "off": "off",
                "true": "on",
                "false": "off",
                "yes": "on",
                "no": "off",
                "1": "on",
                "0": "off",
            }
            if v.lower() not in table:
                raise bad
            return table[v.lower()]
        if self.kind in ("int", "float"):
            try:
                num = int(v) if self.kind == "int" else float(v)
            except ValueError:
                raise bad from None
            if (
                not math.isfinite(num)
                or (self.low is not None and num < self.low)
                or (self.high is not None and num > self.high)
            ):
                raise bad
            return str(num)
        if self.kind == "enum":
            if v not in self.choices:
                raise bad
            return v
        if self.kind == "addresses":
            try:
                return addrs.normalize(v)
            except addrs.RuleError as e:
                raise GfsError(
                    "invalid",
                    "bad_option_value",
                    f"option {self.name}={value!r}: {e}",
                    option=self.name,
                ) from None
        if not v.isprintable() or len(v) > 1024:
            raise bad
        return v

    def describe(self) -> str:
        if self.kind == "bool":
            return "on or off"
        if self.kind in ("int", "float"):
            return f"{'an integer' if self.kind == 'int' else 'a number'} from {self.low:g} to {self.high:g}"
        if self.kind == "enum":
            return "one of " + ", ".join(self.choices)
        if self.kind == "addresses":
            return "comma-separated addresses, CIDR networks, wildcards like 192.168.1.* or *"
        return "printable text"


OPTIONS: dict[str, Option] = {
    o.name: o
    for o in [
        Option(
            "client.attr-timeout",
            "float",
            "1",
            "seconds the kernel caches attributes",
            NEXT_MOUNT,
            0,
            3600,
        ),
        Option(
            "client.entry-timeout",
            "float",
            "1",
            "seconds the kernel caches names",
            NEXT_MOUNT,
            0,
            3600,
        ),
        Option(
            "client.writeback",
            "bool",
            "off",
            "FUSE writeback cache: faster writes, weaker coherence between mounts",
            NEXT_MOUNT,
        ),
        Option(
            "performance.write-behind",
            "bool",
            "off",
            "buffer small writes in the client, sent together; close and fsync wait for them",
            NEXT_MOUNT,
        ),
        Option(
            "client.read-ahead-kib",
            "int",
            "1024",
            "kernel read-ahead of a mount",
            NEXT_MOUNT,
            4,
            65536,
        ),
        Option(
            "replica.failure-detection-seconds",
            "float",
            "3",
            "how long a silent member takes to leave the in-sync set (also the read lease)",
            LIVE,
            0.5,
            120,
        ),
        Option(
            "replica.min-in-sync",
            "enum",
            "majority",
            "members that must hold a write before it is acknowledged (fewer: EROFS)",
            LIVE,
            choices=("majority", "all", "1", "2", "3", "4", "5"),
        ),
        Option(
            "replica.relaxed-reads",
            "bool",
            "off",
            "serve reads without the read lease: no stall, but a deposed primary may answer"
            " stale data",
            LIVE,
        ),
        Option(
            "server.allow-privileged-nodes",
            "bool",
            "on",
            "a caller that is root on its client may make device nodes, setuid/setgid-root"
            " files and file capabilities; off: nobody may (EPERM). Non-root callers never may",
            LIVE,
        ),
        Option(
            "auth.allow",
            "addresses",
            "*",
            "client addresses the bricks serve (addresses, CIDR networks, 192.168.1.*; *: all);"
            " others get EACCES and cannot mount",
            LIVE,
        ),
        Option(
            "auth.reject",
            "addresses",
            "",
            "client addresses the bricks refuse, even when auth.allow names them",
            LIVE,
        ),
    ]
}

#: Options the bricks enforce: a change is pushed to them (epoch + 1) and acknowledged.
BRICK_OPTIONS = frozenset(k for k, o in OPTIONS.items() if o.applies == LIVE)

#: Options once accepted whose effect was never built; migration 0003 removed stored values.
WITHDRAWN = {
    "heal.throttle-mbps": "a heal bandwidth cap is not built yet (docs/options.md)",
}


TEMPLATES: dict[str, tuple[str, dict[str, str]]] = {
    "default": ("the defaults of every option", {}),
    "small-files": (
        "metadata-heavy work: longer kernel caches",
        {"client.attr-timeout": "5", "client.entry-timeout": "5"},
    ),
    "large-files": (
        "streaming: larger read-ahead and the writeback cache",
        {"client.read-ahead-kib": "8192", "client.writeback": "on"},
    ),
    "fast-failover": (
        "detect a dead member within a second",
        {"replica.failure-detection-seconds": "1"},
    ),
}


def get(key: str) -> Option:
    """The option `key`, or GfsError(invalid, unknown_option), saying so when the
    option is one whose effect is not built."""
    opt = OPTIONS.get(key)
    if opt is None:
        why = WITHDRAWN.get(key)
        message = f"option {key!r} is not supported: {why}" if why else f"unknown option {key!r}"
        raise GfsError("invalid", "unknown_option", message, option=key)
    return opt


def check(key: str, value: str) -> str:
    return get(key).check(value)


def markdown() -> str:
    rows = [
        "| option | type | default | accepted | takes effect | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for o in OPTIONS.values():
        rows.append(
            f"| `{o.name}` | {o.kind} | `{o.default}` | {o.describe()} | {o.applies} | {o.help} |"
        )
    rows += ["", "| template | options | meaning |", "|---|---|---|"]
    for name, (help_, opts) in TEMPLATES.items():
        body = ", ".join(f"`{k}={v}`" for k, v in opts.items()) or "—"
        rows.append(f"| `{name}` | {body} | {help_} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
