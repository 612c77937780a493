"""The `gfs` command line: a pure REST client of gfsd (plus helpers it execs).

Server and token: options, else GFS_SERVER / GFS_TOKEN / GFS_TOKEN_FILE, else a
config file (~/.config/gfs/cli.toml, /etc/gfs/cli.toml: `server`, `token_file`),
else 127.0.0.1:24100 and /var/lib/gfs/admin.token. Errors are one line on stderr
(`gfs: error: …`) with exit code 1; usage errors exit 2.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

import gfs
from gfs.api import models as m
from gfs.api.client import ApiError, Client
from gfs.cli import cluster

T = TypeVar("T")

DEFAULT_SERVER = "127.0.0.1:24100"
DEFAULT_TOKEN_FILE = "/var/lib/gfs/admin.token"
CONFIG_FILES = (Path.home() / ".config/gfs/cli.toml", Path("/etc/gfs/cli.toml"))

app = typer.Typer(
    name="gfs",
    help="gfs: a replicated POSIX filesystem managed like GlusterFS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
peer_app = typer.Typer(help="Peers: the nodes whose brick daemons gfsd uses.", no_args_is_help=True)
volume_app = typer.Typer(help="Volumes: create, start, inspect, tune.", no_args_is_help=True)
template_app = typer.Typer(help="Volume templates (named option groups).", no_args_is_help=True)
app.add_typer(peer_app, name="peer")
app.add_typer(volume_app, name="volume")
volume_app.add_typer(template_app, name="template")
app.add_typer(cluster.app, name="cluster")

out = Console()
_state: dict[str, str | None] = {"server": None, "token": None, "token_file": None}


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"gfs: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _config() -> dict[str, Any]:
    for path in CONFIG_FILES:
        if path.is_file():
            try:
                return tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as e:
                fail(f"config {path}: {e}")
    return {}


def client() -> Client:
    cfg = _config()
    server = _state["server"] or os.environ.get("GFS_SERVER") or cfg.get("server") or DEFAULT_SERVER
    token = _state["token"] or os.environ.get("GFS_TOKEN")
    if not token:
        path = (
            _state["token_file"]
            or os.environ.get("GFS_TOKEN_FILE")
            or cfg.get("token_file")
            or DEFAULT_TOKEN_FILE
        )
        try:
            token = Path(path).read_text().strip()
        except OSError as e:
            fail(f"cannot read the token from {path}: {e.strerror} (give --token or --token-file)")
    return Client(str(server), token)


def call(fn: Callable[[Client], T]) -> T:
    with client() as c:
        try:
            return fn(c)
        except ApiError as e:
            fail(e.message)


def emit_json(data: Any) -> None:
    def plain(x: Any) -> Any:
        if isinstance(x, BaseModel):
            return x.model_dump(mode="json")
        if isinstance(x, list):
            return [plain(i) for i in x]
        return x

    print(json.dumps(plain(data), indent=2))


def gib(n: int | None) -> str:
    return "-" if n is None else f"{n / (1 << 30):.1f} GiB"


JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


@app.callback()
def main_options(
    server: Annotated[str | None, typer.Option(help="gfsd HOST:PORT [env GFS_SERVER]")] = None,
    token: Annotated[str | None, typer.Option(help="admin token [env GFS_TOKEN]")] = None,
    token_file: Annotated[
        str | None, typer.Option(help="file holding the token [env GFS_TOKEN_FILE]")
    ] = None,
) -> None:
    _state.update(server=server, token=token, token_file=token_file)


@app.command()
def version() -> None:
    """Print the gfs version."""
    typer.echo(gfs.__version__)


# -- peers -------------------------------------------------------------------------------------


@peer_app.command("add")
def peer_add(
    address: Annotated[str, typer.Argument(help="HOST:PORT of the peer's gfs-brickd")],
) -> None:
    """Add a peer; gfsd asks its brick daemon for hostname, zone and brick roots."""
    p = call(lambda c: c.peer_add(address))
    out.print(f"peer {p.name} added ({p.address}, zone {p.zone or '-'})")


@peer_app.command("list")
def peer_list(as_json: JsonOpt = False) -> None:
    """List peers."""
    peers = call(lambda c: c.peers())
    if as_json:
        return emit_json(peers)
    t = Table("name", "address", "zone", "online", "roots", "free")
    for p in peers:
        t.add_row(
            p.name,
            p.address,
            p.zone or "-",
            "yes" if p.online else "NO",
            ", ".join(r.path for r in p.roots) or "-",
            gib(sum(r.free_bytes for r in p.roots)),
        )
    out.print(t)


@peer_app.command("remove")
def peer_remove(peer: str) -> None:
    """Remove a peer (refused while it holds bricks)."""
    call(lambda c: c.peer_remove(peer))
    out.print(f"peer {peer} removed")


# -- volumes -----------------------------------------------------------------------------------


@volume_app.command("create")
def volume_create(
    name: str,
    bricks: Annotated[
        list[str] | None, typer.Argument(help="HOST:/PATH bricks (Gluster style)")
    ] = None,
    replica: Annotated[int, typer.Option(help="copies of every file")] = 3,
    size: Annotated[str | None, typer.Option(help="smart create: size like 10GiB")] = None,
    zone: Annotated[list[str] | None, typer.Option(help="place replicas in these zones")] = None,
    template: Annotated[str | None, typer.Option(help="template name")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="KEY=VALUE")] = None,
) -> None:
    """Create a volume from a size (bricks placed automatically) or explicit bricks."""
    opts: dict[str, str] = {}
    for item in option or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            fail(f"--option {item!r}: expected KEY=VALUE", 2)
        opts[key] = value
    try:
        spec = m.VolumeCreate(
            name=name,
            replica=replica,
            bricks=bricks or None,
            size=size,
            zones=zone or None,
            template=template,
            options=opts,
        )
    except ValidationError as e:
        first = e.errors()[0]
        fail(f"{'.'.join(str(p) for p in first['loc']) or 'volume'}: {first['msg']}", 2)
    v = call(lambda c: c.volume_create(spec))
    n = sum(len(rs.bricks) for rs in v.replica_sets)
    out.print(
        f"volume {v.name} created: replica {v.replica}, {n} bricks (start it with "
        f"gfs volume start {v.name})"
    )


@volume_app.command("start")
def volume_start(name: str) -> None:
    """Start serving a volume's bricks."""
    call(lambda c: c.volume_start(name))
    out.print(f"volume {name} started")


@volume_app.command("stop")
def volume_stop(name: str) -> None:
    """Stop serving a volume's bricks (mounts lose it)."""
    call(lambda c: c.volume_stop(name))
    out.print(f"volume {name} stopped")


@volume_app.command("delete")
def volume_delete(
    name: str,
    delete_data: Annotated[bool, typer.Option(help="also delete the brick folders")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
) -> None:
    """Delete a stopped volume (its data only with --delete-data)."""
    if not yes:
        if not sys.stdin.isatty():
            fail(f"deleting volume {name} needs --yes when not run from a terminal", 2)
        what = "and its data " if delete_data else ""
        if not typer.confirm(f"Delete volume {name} {what}?"):
            fail("cancelled")
    call(lambda c: c.volume_delete(name, delete_data))
    out.print(f"volume {name} deleted" + (" with its data" if delete_data else ""))


@volume_app.command("info")
def volume_info(name: str, as_json: JsonOpt = False) -> None:
    """A volume's layout: every brick with its peer, address and path."""
    v = call(lambda c: c.volume(name))
    if as_json:
        return emit_json(v)
    out.print(
        f"volume {v.name}  state {v.state}  replica {v.replica}  size {gib(v.size_bytes)}"
        f"  template {v.template or '-'}"
    )
    t = Table("set", "brick", "peer", "address", "path", "in sync")
    for rs in v.replica_sets:
        for b in rs.bricks:
            primary = " (primary)" if b.id == rs.primary else ""
            t.add_row(
                str(rs.index),
                b.name + primary,
                b.peer_name,
                b.address,
                b.path,
                "yes" if b.in_sync else "NO",
            )
    out.print(t)


@volume_app.command("list")
def volume_list(as_json: JsonOpt = False) -> None:
    """List volumes."""
    vols = call(lambda c: c.volumes())
    if as_json:
        return emit_json(vols)
    t = Table("name", "state", "replica", "size", "bricks")
    for v in vols:
        t.add_row(
            v.name,
            v.state,
            str(v.replica),
            gib(v.size_bytes),
            str(sum(len(rs.bricks) for rs in v.replica_sets)),
        )
    out.print(t)


@volume_app.command("status")
def volume_status(name: str, as_json: JsonOpt = False) -> None:
    """Each brick online or not, with its peer and space."""
    st = call(lambda c: c.volume_status(name))
    if as_json:
        return emit_json(st)
    out.print(f"volume {st.name}  state {st.state}")
    t = Table("brick", "peer", "address", "online", "used", "free", "path")
    for b in st.bricks:
        t.add_row(
            b.name,
            b.peer_name,
            b.address,
            "yes" if b.online else "NO",
            gib(b.used_bytes),
            gib(b.free_bytes),
            b.path,
        )
    out.print(t)


@volume_app.command("set")
def volume_set(
    name: str, options: Annotated[list[str], typer.Argument(help="KEY=VALUE …")]
) -> None:
    """Set volume options (see gfs volume get NAME, docs/options.md)."""
    pairs: dict[str, str] = {}
    for item in options:
        key, eq, value = item.partition("=")
        if not eq or not key:
            fail(f"{item!r}: expected KEY=VALUE", 2)
        pairs[key] = value
    call(lambda c: c.volume_set(name, pairs))
    out.print(f"volume {name}: " + ", ".join(f"{k}={v}" for k, v in pairs.items()))


@volume_app.command("get")
def volume_get(
    name: str, key: Annotated[str | None, typer.Argument()] = None, as_json: JsonOpt = False
) -> None:
    """Show the volume's options (all, or one)."""
    values = call(lambda c: c.volume_options(name))
    if key is not None:
        if key not in values:
            fail(f"unknown option {key!r}")
        values = {key: values[key]}
    if as_json:
        return emit_json(values)
    t = Table("option", "value")
    for k, v in values.items():
        t.add_row(k, v)
    out.print(t)


@volume_app.command("reset")
def volume_reset(name: str, key: str) -> None:
    """Reset an option to its default."""
    values = call(lambda c: c.volume_reset(name, key))
    out.print(f"volume {name}: {key}={values[key]} (default)")


@volume_app.command("expand")
def volume_expand(
    name: str, size: Annotated[str, typer.Option(help="the new size, like 20GiB")]
) -> None:
    """Grow a size-based volume."""
    try:
        m.parse_size(size)
    except ValueError as e:
        fail(str(e), 2)
    v = call(lambda c: c.volume_expand(name, size))
    out.print(f"volume {name} is now {gib(v.size_bytes)}")


@template_app.command("list")
def template_list(as_json: JsonOpt = False) -> None:
    """List templates."""
    ts = call(lambda c: c.templates())
    if as_json:
        return emit_json(ts)
    t = Table("template", "options", "meaning")
    for x in ts:
        t.add_row(x.name, ", ".join(f"{k}={v}" for k, v in x.options.items()) or "-", x.description)
    out.print(t)


@template_app.command("show")
def template_show(name: str, as_json: JsonOpt = False) -> None:
    """Show one template."""
    x = call(lambda c: c.template(name))
    if as_json:
        return emit_json(x)
    out.print(f"{x.name}: {x.description}")
    for k, v in x.options.items():
        out.print(f"  {k}={v}")


# -- mounting ----------------------------------------------------------------------------------


def _helper() -> str:
    """The mount helper of this installation (next to this Python), else one on PATH."""
    mine = os.path.join(os.path.dirname(sys.executable), "mount.fuse.gfs")
    return mine if os.path.exists(mine) else shutil.which("mount.fuse.gfs") or mine


@app.command()
def mount(
    source: Annotated[str, typer.Argument(help="HOST[:PORT]:/VOLUME or HOST:PORT/BRICK")],
    mountpoint: Annotated[str, typer.Argument(help="an existing directory")],
    options: Annotated[str, typer.Option("-o", help="mount options, comma separated")] = "",
    foreground: Annotated[bool, typer.Option("-f", help="stay in the foreground")] = False,
) -> None:
    """Mount a gfs volume (runs mount.fuse.gfs)."""
    helper = _helper()
    args = [helper, source, mountpoint]
    if options:
        args += ["-o", options]
    if foreground:
        args.append("-f")
    try:
        os.execv(helper, args)
    except OSError as e:
        fail(f"cannot run {helper}: {e.strerror}")


@app.command("install-mount-helper")
def install_mount_helper(
    target: Annotated[Path, typer.Option(help="where mount(8) looks")] = Path(
        "/sbin/mount.fuse.gfs"
    ),
) -> None:
    """Link mount.fuse.gfs where mount(8) finds it, so `mount -t fuse.gfs` works."""
    helper = Path(_helper()).resolve()
    if not helper.exists():
        fail(f"{helper} does not exist")
    try:
        if target.is_symlink() or target.exists():
            if target.resolve() == helper:
                out.print(f"{target} already points to {helper}")
                return
            target.unlink()
        target.symlink_to(helper)
    except OSError as e:
        fail(f"cannot link {target}: {e.strerror}")
    out.print(f"{target} -> {helper}")


def main() -> None:
    app()
