"""Where the CLI finds gfsd and its token.

Precedence for each setting: command-line option > environment > config file
(`~/.config/gfs/cli.toml`, else `/etc/gfs/cli.toml`; keys `server`, `token_file`)
> built-in default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from gfs.api.client import Client
from gfs.cli.output import CliError, usage

DEFAULT_SERVER = "127.0.0.1:24100"
DEFAULT_TOKEN_FILE = "/var/lib/gfs/admin.token"
CONFIG_KEYS = {"server", "token_file"}


def config_paths() -> list[Path]:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(xdg) / "gfs" / "cli.toml", Path("/etc/gfs/cli.toml")]


def load_config() -> tuple[dict[str, str], Path | None]:
    """The first config file that exists, validated; ({}, None) when there is none."""
    for path in config_paths():
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise usage(f"config {path}: {e.strerror}") from e
        except UnicodeDecodeError as e:
            raise usage(f"config {path}: not UTF-8 text ({e.reason})") from e
        try:
            data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise usage(f"config {path}: {e}") from e
        unknown = set(data) - CONFIG_KEYS
        if unknown:
            raise usage(f"config {path}: unknown setting(s) {', '.join(sorted(unknown))}")
        for key, value in data.items():
            if not isinstance(value, str):
                raise usage(f"config {path}: {key} must be a string")
        return data, path
    return {}, None


@dataclass
class Settings:
    server: str
    token: str | None
    token_file: str

    def read_token(self) -> str:
        if self.token is not None:
            return self.token
        try:
            token = Path(self.token_file).read_text().strip()
        except OSError as e:
            raise CliError(
                f"cannot read token file {self.token_file}: {e.strerror} "
                "(give --token, --token-file or GFS_TOKEN)"
            ) from e
        except UnicodeDecodeError:
            raise CliError(f"token file {self.token_file} does not hold a token") from None
        if not token:
            raise CliError(f"token file {self.token_file} is empty")
        return token

    def client(self) -> Client:
        return Client(self.server, self.read_token())


def resolve(server: str | None, token: str | None, token_file: str | None) -> Settings:
    """Settings from options (None when not given), the environment and the config file."""
    env = os.environ
    # A broken config file only matters when something is left to take from it.
    need_config = (server is None and not env.get("GFS_SERVER")) or (
        token is None
        and token_file is None
        and not env.get("GFS_TOKEN")
        and not env.get("GFS_TOKEN_FILE")
    )
    config, _ = load_config() if need_config else ({}, None)
    srv = server or env.get("GFS_SERVER") or config.get("server") or DEFAULT_SERVER
    # A token given at a level beats a token file given at a lower one.
    tok: str | None = None
    tfile = DEFAULT_TOKEN_FILE
    if token is not None:
        tok = token
    elif token_file is not None:
        tfile = token_file
    elif env.get("GFS_TOKEN"):
        tok = env["GFS_TOKEN"]
    elif env.get("GFS_TOKEN_FILE"):
        tfile = env["GFS_TOKEN_FILE"]
    elif "token_file" in config:
        tfile = config["token_file"]
    return Settings(server=srv, token=tok, token_file=tfile)


@dataclass
class GlobalOptions:
    """What the root callback saw; resolved only when a command needs gfsd."""

    server: str | None = None
    token: str | None = None
    token_file: str | None = None


def from_ctx(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    opts = obj if isinstance(obj, GlobalOptions) else GlobalOptions()
    return resolve(opts.server, opts.token, opts.token_file)
