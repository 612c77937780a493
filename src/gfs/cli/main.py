"""The `gfs` command line: a pure client (REST to gfsd; daemons and helpers by exec).

Every failure is one line `gfs: error: MESSAGE` on stderr: exit code 1 when the
request failed (gfsd said no, or could not be reached), 2 for bad usage.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import exceptions as cx
except ImportError:  # older typer: plain click
    from click import exceptions as cx  # type: ignore[no-redef]

import gfs
from gfs import tracing
from gfs.api.client import ApiError
from gfs.cli import certs, cluster, peer, volume
from gfs.cli.output import FAILURE, USAGE, CliError
from gfs.cli.settings import GlobalOptions

app = typer.Typer(
    name="gfs",
    help="gfs: a replicated POSIX filesystem managed like GlusterFS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(peer.app, name="peer")
app.add_typer(volume.app, name="volume")
app.add_typer(cluster.app, name="cluster")
app.add_typer(certs.app, name="certs")


@app.callback()
def root(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="HOST:PORT",
            help="gfsd REST address (env GFS_SERVER, config file, default 127.0.0.1:24100)",
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="admin bearer token (env GFS_TOKEN)")
    ] = None,
    token_file: Annotated[
        str | None,
        typer.Option(
            "--token-file",
            metavar="PATH",
            help="file holding the token (env GFS_TOKEN_FILE, config file, "
            "default /var/lib/gfs/admin.token)",
        ),
    ] = None,
) -> None:
    """Settings resolve lazily: commands that need no server never read the config."""
    ctx.obj = GlobalOptions(server, token, token_file)


@app.command()
def version() -> None:
    """Print the gfs version."""
    typer.echo(gfs.__version__)


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
    """Mount a gfs volume or brick (runs mount.fuse.gfs)."""
    helper = _helper()
    args = [helper, source, mountpoint]
    if options:
        args += ["-o", options]
    if foreground:
        args.append("-f")
    try:
        os.execv(helper, args)
    except OSError as e:
        raise CliError(f"cannot run {helper}: {e.strerror}") from None


@app.command("install-mount-helper")
def install_mount_helper(
    target: Annotated[Path, typer.Option("--target", help="where mount(8) looks")] = Path(
        "/sbin/mount.fuse.gfs"
    ),
) -> None:
    """Link mount.fuse.gfs where mount(8) finds it, so `mount -t fuse.gfs` works."""
    helper = Path(_helper()).resolve()
    if not helper.exists():
        raise CliError(f"{helper} does not exist")
    try:
        if target.is_symlink() or target.exists():
            if target.resolve() == helper:
                typer.echo(f"{target} already points to {helper}")
                return
            target.unlink()
        target.symlink_to(helper)
    except OSError as e:
        raise CliError(f"cannot link {target}: {e.strerror}") from None
    typer.echo(f"{target} -> {helper}")


#: The bin folder the shipped units name; install-units points them at the real one.
UNIT_BINDIR = "/opt/gfs/venv/bin"


def unit_texts(bindir: str) -> dict[str, str]:
    """The systemd units shipped in the package, with ExecStart in `bindir`."""
    units = resources.files("gfs.data").joinpath("systemd")
    return {
        u.name: u.read_text().replace(f"{UNIT_BINDIR}/", f"{bindir.rstrip('/')}/")
        for u in sorted(units.iterdir(), key=lambda u: u.name)
        if u.name.endswith(".service")
    }


@app.command("install-units")
def install_units(
    target: Annotated[Path, typer.Option("--target", help="systemd unit folder")] = Path(
        "/etc/systemd/system"
    ),
    bindir: Annotated[
        str | None,
        typer.Option("--bindir", help="where gfsd and gfs-brickd are (default: this install's)"),
    ] = None,
) -> None:
    """Install the systemd units of gfsd and gfs-brickd (then: systemctl daemon-reload)."""
    bindir = bindir or os.path.dirname(sys.executable)
    if not os.path.isabs(bindir):
        raise CliError(f"--bindir {bindir}: must be an absolute path", USAGE)
    if not target.is_dir():
        raise CliError(f"{target} is not a directory", USAGE)
    for name, text in unit_texts(bindir).items():
        path = target / name
        try:
            if path.exists() and path.read_text() == text:
                typer.echo(f"{path} unchanged")
                continue
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            tmp.replace(path)  # atomically: systemd never reads half a unit
        except OSError as e:
            raise CliError(f"cannot write {path}: {e.strerror}") from None
        typer.echo(f"{path} installed")


def _fail(message: str, code: int) -> None:
    # Keep it to one line: gfsd's messages may quote input with newlines in it.
    first, *rest = message.strip().splitlines() or ["failed"]
    print(f"gfs: error: {first}", file=sys.stderr)
    for line in rest:  # only CliError adds lines on purpose (daemon log tails)
        print(f"  {line}", file=sys.stderr)
    sys.exit(code)


#: Global options that take a value (the words after them are not the command).
_VALUED = {"--server", "--token", "--token-file"}


def _command(argv: list[str]) -> str:
    """The span name: `gfs GROUP COMMAND`, without option values (never the token)."""
    words: list[str] = []
    args = iter(argv)
    for a in args:
        if a in _VALUED:
            next(args, None)
        elif not a.startswith("-"):
            words.append(a)
            if len(words) == 2:
                break
    return " ".join(["gfs", *words])


def main() -> None:
    try:
        # Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; the span is the trace's root.
        tracing.setup("gfs-cli")
    except tracing.TracingError as e:
        _fail(str(e), USAGE)
    try:
        with tracing.span(_command(sys.argv[1:])):
            rv = app(standalone_mode=False)
    except ApiError as e:
        message = " ".join(e.message.split())
        if e.status == 401:
            message = f"unauthorized: {message} (see --token, --token-file, GFS_TOKEN)"
        _fail(message, FAILURE)
    except CliError as e:
        _fail(e.message, e.code)
    except cx.NoArgsIsHelpError as e:
        e.show()
        sys.exit(USAGE)
    except cx.UsageError as e:
        hint = f" (see: {e.ctx.command_path} --help)" if e.ctx is not None else ""
        _fail(e.format_message() + hint, USAGE)
    except cx.ClickException as e:
        _fail(e.format_message(), e.exit_code)
    except typer.Abort:
        _fail("aborted", FAILURE)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        # The reader went away (`gfs volume list | head -1`): nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(FAILURE)
    except Exception as e:  # a bug: still one line, with what it was
        _fail(f"internal error: {type(e).__name__}: {e} (a bug in gfs: please report it)", FAILURE)
    sys.exit(rv if isinstance(rv, int) else 0)
