"""`gfs certs`: the cluster CA and the certificates of nodes, gfsd and mounts.

Local file work only (no daemon is asked): run it where the CA key is kept, then copy
each identity folder to the machine that uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gfs import certs
from gfs.cli.output import CliError, usage

app = typer.Typer(help="Make the cluster CA and issue certificates.", no_args_is_help=True)

DirArg = Annotated[Path, typer.Argument(help="folder of the cluster CA (ca.crt, ca.key)")]


@app.command()
def init(directory: DirArg) -> None:
    """Make a new cluster CA in DIRECTORY (ca.key stays there, mode 0600)."""
    try:
        path = certs.init_ca(directory)
    except certs.CertError as e:
        raise CliError(str(e)) from None
    except OSError as e:
        raise CliError(f"{e.filename or directory}: {e.strerror}") from None
    typer.echo(f"CA created: {path}")


@app.command()
def issue(
    directory: DirArg,
    role: Annotated[str, typer.Option(help="node (gfs-brickd), admin (gfsd) or client (mount)")],
    name: Annotated[str, typer.Option(help="certificate name (its folder's name too)")],
    volume: Annotated[
        list[str] | None, typer.Option(help="volume a client may use (repeatable)")
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option(
            help="DNS name or IP the node serves on (repeatable; default: loopback "
            "and this host's names)"
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="identity folder to write (default DIRECTORY/NAME)")
    ] = None,
    days: Annotated[int, typer.Option(help="validity in days")] = certs.CERT_DAYS,
) -> None:
    """Issue a certificate signed by the CA in DIRECTORY: writes ca.crt, tls.crt and
    tls.key (0600) into one folder, what the daemon or mount takes as its TLS folder."""
    try:
        path = certs.issue(directory, role, name, volume or [], host or None, out, days)
    except certs.CertError as e:
        raise usage(str(e)) from None
    except OSError as e:
        raise CliError(f"{e.filename or directory}: {e.strerror}") from None
    typer.echo(f"{role} certificate {name}: {path}")


@app.command("trust")
def trust_cmd(
    folder: Annotated[Path, typer.Argument(help="identity folder (ca.crt, tls.crt, tls.key)")],
    ca: Annotated[
        list[Path] | None,
        typer.Argument(help="CA certificates (or CA folders) to trust beside the folder's own"),
    ] = None,
) -> None:
    """Set the CAs an identity folder trusts: the CA that signed its certificate plus
    the given ones; with none, only its own (the last step of a CA rotation). A running
    gfs-brickd takes the change at its next connection, without a restart."""
    try:
        names = certs.trust(folder, ca or [])
    except certs.CertError as e:
        raise usage(str(e)) from None
    except OSError as e:
        raise CliError(f"{e.filename or folder}: {e.strerror}") from None
    typer.echo(f"{folder} trusts: {', '.join(names)}")
