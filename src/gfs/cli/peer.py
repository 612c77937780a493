"""`gfs peer ...`: the nodes (gfs-brickd) of the cluster."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gfs.cli.output import console, human_bytes, print_json
from gfs.cli.settings import from_ctx

app = typer.Typer(help="Manage the peers (gfs-brickd nodes) of the cluster.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


@app.command("add")
def add(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="HOST:PORT of the peer's gfs-brickd")],
    json_out: JsonOpt = False,
) -> None:
    """Add a peer to the cluster."""
    with from_ctx(ctx).client() as api:
        peer = api.peer_add(address)
    if json_out:
        print_json(peer)
    else:
        typer.echo(f"peer {peer.name} added ({peer.address}, zone {peer.zone or '-'})")


@app.command("list")
def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the peers."""
    with from_ctx(ctx).client() as api:
        peers = api.peers()
    if json_out:
        print_json(peers)
        return
    t = Table("NAME", "ADDRESS", "ZONE", "STATE", "ROOTS", "FREE", "ID")
    for p in peers:
        free = sum(r.free_bytes for r in p.roots)
        t.add_row(
            escape(p.name),
            escape(p.address),
            escape(p.zone) or "-",
            "online" if p.online else "[red]offline[/red]",
            escape(", ".join(r.path for r in p.roots)) or "-",
            human_bytes(free) if p.roots else "-",
            p.id,
        )
    console().print(t)


@app.command("remove")
def remove(
    ctx: typer.Context, peer: Annotated[str, typer.Argument(help="peer name, id or address")]
) -> None:
    """Remove a peer (it must hold no bricks)."""
    with from_ctx(ctx).client() as api:
        api.peer_remove(peer)
    typer.echo(f"peer {peer} removed")
