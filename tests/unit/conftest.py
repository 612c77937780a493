"""Shared fixtures of the unit tests."""

from __future__ import annotations

import pytest


class Clock:
    """A monotonic clock the test moves by hand (passed to the object under test)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
