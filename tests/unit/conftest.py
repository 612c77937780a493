"""Shared fixtures of the unit tests."""

from __future__ import annotations

import time

import pytest


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """time.monotonic, as the client caches read it, under the test's control."""
    c = Clock()
    monkeypatch.setattr(time, "monotonic", c)
    return c
