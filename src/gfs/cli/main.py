"""The `gfs` command line: a pure client (REST to gfsd; helpers by exec).

The management commands (peer, volume, cluster) arrive with gfsd; for now the
CLI offers what works without it.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Annotated

import typer

import gfs

app = typer.Typer(
    name="gfs",
    help="gfs: a replicated POSIX filesystem managed like GlusterFS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the gfs version."""
    typer.echo(gfs.__version__)


@app.command()
def mount(
    source: Annotated[str, typer.Argument(help="HOST:PORT/BRICK")],
    mountpoint: Annotated[str, typer.Argument(help="an existing directory")],
    options: Annotated[str, typer.Option("-o", help="mount options, comma separated")] = "",
    foreground: Annotated[bool, typer.Option("-f", help="stay in the foreground")] = False,
) -> None:
    """Mount a gfs brick (runs mount.fuse.gfs)."""
    helper = shutil.which("mount.fuse.gfs") or os.path.join(
        os.path.dirname(sys.executable), "mount.fuse.gfs"
    )
    args = [helper, source, mountpoint]
    if options:
        args += ["-o", options]
    if foreground:
        args.append("-f")
    try:
        os.execv(helper, args)
    except OSError as e:
        typer.echo(f"gfs: error: cannot run {helper}: {e.strerror}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    app()
