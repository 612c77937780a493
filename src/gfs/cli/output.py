"""How the CLI talks back: one-line errors, JSON documents, rich tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from rich.console import Console

USAGE = 2
FAILURE = 1


class CliError(Exception):
    """A failure reported as `gfs: error: MESSAGE` with exit code `code`."""

    def __init__(self, message: str, code: int = FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def usage(message: str) -> CliError:
    return CliError(message, USAGE)


def validation_message(e: ValidationError) -> str:
    """The first pydantic error as `field: message` (one line)."""
    errs = e.errors()
    if not errs:
        return "invalid input"
    first = errs[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    msg = str(first.get("msg", "invalid"))
    return f"{where}: {msg}" if where else msg


def console() -> Console:
    # Wide enough that tables are not squeezed when stdout is a pipe.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def print_json(data: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    if isinstance(data, BaseModel):
        doc: Any = data.model_dump(mode="json")
    elif isinstance(data, Sequence):
        doc = [x.model_dump(mode="json") for x in data]
    else:
        doc = data
    print(json.dumps(doc, indent=2, sort_keys=False))


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # unreachable: the loop returns at TiB
