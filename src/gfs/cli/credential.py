"""`gfs volume credential ...`: client certificates (and layout tokens) for some volumes,
issued and revoked by gfsd, so that a mount needs no admin token."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from gfs import certs
from gfs.api import models as m
from gfs.cli.output import CliError, console, print_json, usage, validation_message
from gfs.cli.settings import from_ctx

app = typer.Typer(
    help="Per-volume client credentials: what a mount uses instead of the admin token.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
#: The bearer token file in a credential folder (mount.fuse.gfs -o credential=DIR reads it).
TOKEN = "token"


def _prepare(out: Path) -> bool:
    """Make `out` (0700), or take an empty folder: the key is given once and must land.
    Returns whether it was made here."""
    try:
        out.mkdir(mode=0o700, parents=True)
        return True
    except FileExistsError:
        if not out.is_dir() or any(out.iterdir()):
            raise CliError(f"--out {out}: exists and is not an empty folder") from None
        os.chmod(out, 0o700)
        return False
    except OSError as e:
        raise CliError(f"--out {out}: {e.strerror}") from e


def _write(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)  # whatever the umask


@app.command("create")
def create(
    ctx: typer.Context,
    volumes: Annotated[list[str], typer.Argument(help="the volumes it may mount")],
    name: Annotated[str, typer.Option("--name", help="credential name (its certificate's CN)")],
    out: Annotated[
        Path, typer.Option("--out", help="folder to write it to (made 0700; must be empty)")
    ],
) -> None:
    """Issue a credential for VOLUMES: a client certificate and a token, written once to
    --out; mount with -o credential=DIR."""
    try:
        body = m.CredentialCreate(name=name, volumes=volumes)
    except ValidationError as e:
        raise usage(validation_message(e)) from None
    made = _prepare(out)
    try:
        with from_ctx(ctx).client() as api:
            issued = api.credential_create(body.name, body.volumes)
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    try:
        _write(out / certs.CA_CERT, issued.ca, 0o644)
        _write(out / certs.CERT, issued.cert, 0o644)
        _write(out / certs.KEY, issued.key, 0o600)
        _write(out / TOKEN, issued.token + "\n", 0o600)
    except OSError as e:
        raise CliError(
            f"credential {issued.name} was issued but cannot be written to {out}: {e.strerror}; "
            f"revoke it (gfs volume credential revoke {issued.name}) and issue another"
        ) from e
    typer.echo(
        f"credential {issued.name} for {', '.join(issued.volumes)} written to {out} "
        f"(mount with -o credential={out})"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    volume: Annotated[str | None, typer.Argument(help="only those for this volume")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List credentials (revoked ones too: their certificates stay refused)."""
    with from_ctx(ctx).client() as api:
        found = api.credentials(volume)
    if json_out:
        print_json(found)
        return
    t = Table("NAME", "VOLUMES", "STATE", "CREATED", "EXPIRES", "FINGERPRINT")
    for c in found:
        state = f"revoked {c.revoked:%Y-%m-%d %H:%M}" if c.revoked else "valid"
        t.add_row(
            escape(c.name),
            escape(",".join(c.volumes)),
            state,
            f"{c.created:%Y-%m-%d %H:%M}",
            f"{c.not_after:%Y-%m-%d}",
            c.fingerprint[:16] + "…",
        )
    console().print(t)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="credential name")],
) -> None:
    """Revoke a credential: its token stops working and every brick refuses its
    certificate, on mounts that are up too (they get EACCES)."""
    with from_ctx(ctx).client() as api:
        c = api.credential_revoke(name)
    typer.echo(f"credential {c.name} revoked")
