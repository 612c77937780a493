"""`gfs volume ...`: create, start, stop, delete and inspect volumes."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gfs.api import models as m
from gfs.cli import credential
from gfs.cli.output import CliError, console, human_bytes, print_json, usage, validation_message
from gfs.cli.settings import from_ctx

app = typer.Typer(help="Manage volumes.", no_args_is_help=True)
app.add_typer(credential.app, name="credential")

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
NameArg = Annotated[str, typer.Argument(help="volume name")]


def parse_options(pairs: list[str], what: str = "--option ") -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise usage(f"{what}{pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def build_spec(
    name: str,
    replica: int,
    size: str | None,
    zones: list[str],
    template: str | None,
    options: list[str],
    bricks: list[str],
) -> m.VolumeCreate:
    """The create request, checked here so that bad input never reaches gfsd."""
    if size is None and not bricks:
        raise usage("give either --size (gfsd places the bricks) or bricks as HOST:/path")
    if size is not None and bricks:
        raise usage("give either --size or bricks, not both")
    if size is not None:
        try:
            m.parse_size(size)
        except ValueError as e:
            raise usage(f"--size: {e}") from None
    for b in bricks:
        host, sep, _ = b.partition(":/")  # the host part may carry a port
        if not sep or not host:
            raise usage(f"brick {b!r}: expected HOST:/absolute/path")
    if bricks and len(bricks) % replica:
        raise usage(
            f"{len(bricks)} bricks given: the count must be a multiple of --replica {replica}"
        )
    try:
        return m.VolumeCreate(
            name=name,
            replica=replica,
            bricks=bricks or None,
            size=size,
            zones=zones or None,
            template=template,
            options=parse_options(options),
        )
    except ValidationError as e:
        raise usage(validation_message(e)) from None


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    bricks: Annotated[
        list[str] | None,
        typer.Argument(
            help="bricks as PEER:/path, HOST:PORT:/path or HOST:/path (instead of --size)"
        ),
    ] = None,
    replica: Annotated[int, typer.Option("--replica", min=1, max=16, help="copies")] = 3,
    size: Annotated[
        str | None, typer.Option("--size", help="capacity, e.g. 1GiB: gfsd places the bricks")
    ] = None,
    zone: Annotated[
        list[str] | None, typer.Option("--zone", help="restrict placement to a zone (repeatable)")
    ] = None,
    template: Annotated[str | None, typer.Option("--template", help="option template")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="volume option KEY=VALUE (repeatable)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a volume, from a size (smart placement) or from explicit bricks."""
    spec = build_spec(name, replica, size, zone or [], template, option or [], bricks or [])
    with from_ctx(ctx).client() as api:
        vol = api.volume_create(spec)
    if json_out:
        print_json(vol)
    else:
        count = sum(len(rs.bricks) for rs in vol.replica_sets)
        typer.echo(f"volume {vol.name} created: {count} bricks, replica {vol.replica}")


@app.command("start")
def start(ctx: typer.Context, name: NameArg) -> None:
    """Start a volume (clients may mount it)."""
    with from_ctx(ctx).client() as api:
        vol = api.volume_start(name)
    typer.echo(f"volume {vol.name} {vol.state}")


ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="even while clients have it mounted (they then answer ESHUTDOWN)"),
]


@app.command("stop")
def stop(ctx: typer.Context, name: NameArg, force: ForceOpt = False) -> None:
    """Stop a volume; refused while clients have it mounted, unless --force."""
    with from_ctx(ctx).client() as api:
        vol = api.volume_stop(name, force)
    typer.echo(f"volume {vol.name} {vol.state}")


@app.command("clients")
def clients(ctx: typer.Context, name: NameArg, json_out: JsonOpt = False) -> None:
    """Show the mounts of a volume, as its brick daemons know them."""
    with from_ctx(ctx).client() as api:
        found = api.volume_clients(name)
    if json_out:
        print_json(found)
        return
    t = Table("HOST", "MOUNT POINT", "PID", "ADDRESS", "BRICKS", "LAST HEARD")
    for c in found:
        t.add_row(
            escape(c.hostname),
            escape(c.mountpoint),
            str(c.pid),
            escape(c.address),
            str(len(c.bricks)),
            f"{c.idle_seconds:.0f} s ago",
        )
    out = console()
    out.print(f"Volume {name}: {len(found)} client(s)", markup=False)
    if found:
        out.print(t)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: NameArg,
    delete_data: Annotated[
        bool,
        typer.Option(
            "--delete-data",
            help="also remove the brick folders gfsd made, with their data (an existing"
            " folder given as a brick is emptied and kept)",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    force: ForceOpt = False,
) -> None:
    """Delete a stopped volume; refused while clients still have it mounted, unless --force."""
    if not yes:
        if not sys.stdin.isatty():
            raise usage(f"refusing to delete volume {name} without confirmation: pass --yes")
        what = " and ALL ITS DATA" if delete_data else " (brick data is kept)"
        if not typer.confirm(f"Delete volume {name}{what}?", default=False):
            typer.echo("aborted", err=True)
            raise typer.Exit(1)
    with from_ctx(ctx).client() as api:
        api.volume_delete(name, delete_data, force)
    typer.echo(f"volume {name} deleted" + (" with its data" if delete_data else ""))


@app.command("info")
def info(ctx: typer.Context, name: NameArg, json_out: JsonOpt = False) -> None:
    """Show a volume: settings and every brick with its peer and path."""
    with from_ctx(ctx).client() as api:
        vol = api.volume(name)
    if json_out:
        print_json(vol)
        return
    out = console()
    out.print(f"Volume:   {vol.name}", markup=False)
    out.print(f"ID:       {vol.id}")
    out.print(f"State:    {vol.state}")
    out.print(f"Replica:  {vol.replica}")
    out.print(f"Size:     {human_bytes(vol.size_bytes)}")
    out.print(f"Template: {vol.template or '-'}", markup=False)
    out.print(f"Created:  {vol.created.isoformat()}")
    if vol.options:
        out.print("Options:")
        for k, v in sorted(vol.options.items()):
            out.print(f"  {k} = {v}", markup=False)
    t = Table("SET", "BRICK", "PEER", "ADDRESS", "PATH", "IN SYNC", "PRIMARY")
    for rs in vol.replica_sets:
        for b in rs.bricks:
            t.add_row(
                str(rs.index),
                escape(b.name),
                escape(b.peer_name),
                escape(b.address),
                escape(b.path),
                "yes" if b.in_sync else "[red]no[/red]",
                "*" if rs.primary in (b.id, b.name) else "",
            )
    out.print(t)


@app.command("list")
def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the volumes."""
    with from_ctx(ctx).client() as api:
        vols = api.volumes()
    if json_out:
        print_json(vols)
        return
    t = Table("NAME", "STATE", "REPLICA", "SIZE", "BRICKS")
    for v in vols:
        t.add_row(
            escape(v.name),
            v.state,
            str(v.replica),
            human_bytes(v.size_bytes),
            str(sum(len(rs.bricks) for rs in v.replica_sets)),
        )
    console().print(t)


@app.command("status")
def status(ctx: typer.Context, name: NameArg, json_out: JsonOpt = False) -> None:
    """Show whether each brick of a volume is online, with its space."""
    with from_ctx(ctx).client() as api:
        st = api.volume_status(name)
    if json_out:
        print_json(st)
        return
    out = console()
    out.print(f"Volume {st.name}: {st.state}", markup=False)
    t = Table("BRICK", "PEER", "ADDRESS", "PATH", "ONLINE", "USED", "FREE")
    for b in st.bricks:
        t.add_row(
            escape(b.name),
            escape(b.peer_name),
            escape(b.address),
            escape(b.path),
            "yes" if b.online else "[red]no[/red]",
            human_bytes(b.used_bytes),
            human_bytes(b.free_bytes),
        )
    out.print(t)


@app.command("replace-brick")
def replace_brick(
    ctx: typer.Context,
    name: NameArg,
    old: Annotated[str, typer.Argument(help="brick name or HOST:/PATH to replace")],
    new: Annotated[str, typer.Argument(help="HOST:/PATH of the new, empty brick")],
) -> None:
    """Put a new brick in the place of an old (for example dead) one; heal fills it."""
    if ":/" not in new:
        raise usage(f"new brick {new!r}: expected HOST:/absolute/path")
    with from_ctx(ctx).client() as api:
        v = api.volume_replace_brick(name, old, new)
    console().print(
        f"Volume {v.name}: {old} replaced by {new}; it heals now (gfs volume heal {v.name} info)",
        markup=False,
    )


def _heal_table(hi: m.HealInfo) -> None:
    out = console()
    for rs in hi.sets:
        out.print(
            f"Volume {hi.volume} set {rs.index}: epoch {rs.epoch}, primary {rs.primary}, "
            f"{rs.in_sync} in sync (writes need {rs.min_in_sync})"
            + (f"; healing: {rs.files} files, {human_bytes(rs.bytes)}" if rs.running else ""),
            markup=False,
        )
        t = Table("BRICK", "ADDRESS", "PATH", "ROLE", "STATE", "SERVED")
        for b in rs.members:
            t.add_row(
                escape(b.brick),
                escape(b.address),
                escape(b.path),
                "primary" if b.primary else "secondary",
                "in sync"
                if b.state == "in_sync"
                else "[yellow]out (heals when it answers)[/yellow]",
                "yes" if b.online else "[red]no[/red]",
            )
        out.print(t)


def _heal_done(hi: m.HealInfo, started: float) -> bool:
    # Done once no crawl runs, every member is in sync, and the crawl we asked for ran.
    return all(not rs.running and rs.in_sync == len(rs.members) for rs in hi.sets) and (
        time.monotonic() - started > 1.0
    )


@app.command("heal")
def heal(
    ctx: typer.Context,
    name: NameArg,
    action: Annotated[
        str | None,
        typer.Argument(help="info: show state; full: crawl every member; none: heal now"),
    ] = None,
    json_out: JsonOpt = False,
    wait: Annotated[float, typer.Option(help="seconds to follow a heal (0: do not wait)")] = 600,
) -> None:
    """Heal a volume like `gluster volume heal`: `gfs volume heal NAME` heals the members
    outside the in-sync set now, `... full` crawls every member, `... info` shows the
    epoch, primary and state of each member. The heal worker of each primary also heals
    by itself as soon as a member answers again."""
    if action not in (None, "info", "full"):
        raise usage(f"heal {action!r}: use info, full, or nothing")
    with from_ctx(ctx).client() as api:
        if action == "info":
            hi = api.heal_info(name)
            if json_out:
                print_json(hi)
            else:
                _heal_table(hi)
            return
        started = time.monotonic()
        hi = api.heal_start(name, full=action == "full")
        if action is None and all(rs.in_sync == len(rs.members) for rs in hi.sets):
            if json_out:
                print_json(hi)
            else:
                console().print(f"Volume {name}: every member is in sync, nothing to heal")
            return
        with Progress(
            TextColumn("[bold]heal[/bold] {task.description}"),
            BarColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console(),
            disable=json_out or not sys.stdout.isatty(),
        ) as bar:
            task = bar.add_task(name, total=None, rate="")
            while wait and not _heal_done(hi, started) and time.monotonic() - started < wait:
                time.sleep(0.5)
                hi = api.heal_info(name)
                files = sum(rs.files for rs in hi.sets)
                nbytes = sum(rs.bytes for rs in hi.sets)
                secs = max((rs.seconds for rs in hi.sets), default=0.0) or 1e-9
                bar.update(task, rate=f"{files / secs:.0f} files/s, {nbytes / secs / 1e6:.1f} MB/s")
    if json_out:
        print_json(hi)
        return
    files = sum(rs.files for rs in hi.sets)
    nbytes = sum(rs.bytes for rs in hi.sets)
    secs = max((rs.seconds for rs in hi.sets), default=0.0)
    state = "healed" if _heal_done(hi, started) else "still healing"
    console().print(
        f"Volume {name}: {state}; {files} files checked, {human_bytes(nbytes)} copied "
        f"in {secs:.1f} s ({files / max(secs, 1e-9):.0f} files/s, "
        f"{nbytes / max(secs, 1e-9) / 1e6:.1f} MB/s)",
        markup=False,
    )
    if state != "healed":
        raise CliError(f"volume {name} is not healed yet: see gfs volume heal {name} info")


@app.command("set")
def set_(
    ctx: typer.Context,
    name: NameArg,
    options: Annotated[list[str], typer.Argument(help="KEY=VALUE ...")],
) -> None:
    """Set volume options (see gfs volume get NAME and docs/options.md)."""
    pairs = parse_options(options, what="")
    with from_ctx(ctx).client() as api:
        values = api.volume_set(name, pairs)
        applies = {o.name: o.applies for o in api.options_table()}
    for k in pairs:
        typer.echo(f"volume {name}: {k}={values.get(k, '')} ({_applies(applies.get(k, ''))})")


def _applies(when: str) -> str:
    if when == "live":
        return "live: the bricks of a started volume have it"
    return f"takes effect at the {when}" if when else "?"


@app.command("get")
def get(
    ctx: typer.Context,
    name: NameArg,
    key: Annotated[str | None, typer.Argument(help="one option (default: all)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a volume's options (all, or one)."""
    with from_ctx(ctx).client() as api:
        values = api.volume_options(name)
    if key is not None:
        if key not in values:
            raise CliError(f"unknown option {key!r}")
        values = {key: values[key]}
    if json_out:
        print_json(values)
        return
    t = Table("OPTION", "VALUE")
    for k, v in values.items():
        t.add_row(escape(k), escape(v))
    console().print(t)


@app.command("reset")
def reset(
    ctx: typer.Context, name: NameArg, key: Annotated[str, typer.Argument(help="option")]
) -> None:
    """Reset an option to its default."""
    with from_ctx(ctx).client() as api:
        values = api.volume_reset(name, key)
        applies = {o.name: o.applies for o in api.options_table()}
    typer.echo(
        f"volume {name}: {key}={values.get(key, '')} (default; {_applies(applies.get(key, ''))})"
    )


@app.command("expand")
def expand(
    ctx: typer.Context,
    name: NameArg,
    size: Annotated[str, typer.Option("--size", help="the new size, like 20GiB")],
) -> None:
    """Grow a volume made with --size."""
    try:
        m.parse_size(size)
    except ValueError as e:
        raise usage(f"--size: {e}") from None
    with from_ctx(ctx).client() as api:
        vol = api.volume_expand(name, size)
    typer.echo(f"volume {name} is now {human_bytes(vol.size_bytes)}")


template_app = typer.Typer(help="Volume templates (named option groups).", no_args_is_help=True)
app.add_typer(template_app, name="template")


@template_app.command("list")
def template_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the templates."""
    with from_ctx(ctx).client() as api:
        templates = api.templates()
    if json_out:
        print_json(templates)
        return
    t = Table("TEMPLATE", "OPTIONS", "MEANING")
    for x in templates:
        opts = ", ".join(f"{k}={v}" for k, v in x.options.items()) or "-"
        t.add_row(escape(x.name), escape(opts), escape(x.description))
    console().print(t)


@template_app.command("show")
def template_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="template name")],
    json_out: JsonOpt = False,
) -> None:
    """Show one template."""
    with from_ctx(ctx).client() as api:
        x = api.template(name)
    if json_out:
        print_json(x)
        return
    typer.echo(f"{x.name}: {x.description}")
    for k, v in x.options.items():
        typer.echo(f"  {k}={v}")
