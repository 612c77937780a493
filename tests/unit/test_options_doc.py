from __future__ import annotations

from pathlib import Path

import pytest

from gfs.errors import GfsError
from gfs_mgmt.volume import options

DOC = Path(__file__).resolve().parents[2] / "docs" / "options.md"


def test_doc_lists_the_table() -> None:
    assert options.markdown() in DOC.read_text(), "regenerate docs/options.md"


@pytest.mark.parametrize(
    ("key", "value", "normal"),
    [
        ("client.writeback", "Yes", "on"),
        ("client.attr-timeout", " 2 ", "2.0"),
        ("client.read-ahead-kib", "4096", "4096"),
        ("replica.min-in-sync", "all", "all"),
    ],
)
def test_values_normalized(key: str, value: str, normal: str) -> None:
    assert options.check(key, value) == normal


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("client.writeback", "maybe"),
        ("client.attr-timeout", "-1"),
        ("client.attr-timeout", "nan"),
        ("client.read-ahead-kib", "1.5"),
        ("replica.min-in-sync", "7"),
        ("nope", "1"),
        ("auth.allow", "host.example"),
        ("auth.reject", "10.*.1.2"),
        ("heal.throttle-mbps", "10"),
    ],
)
def test_values_rejected(key: str, value: str) -> None:
    with pytest.raises(GfsError) as e:
        options.check(key, value)
    assert e.value.kind == "invalid" and key in e.value.message


def test_every_option_says_when_it_applies() -> None:
    for o in options.OPTIONS.values():
        assert o.applies in options.APPLIES, o.name
        assert (o.applies == options.LIVE) == (o.name in options.BRICK_OPTIONS)
        assert f"| {o.applies} |" in options.markdown()


@pytest.mark.parametrize("key", ["heal.throttle-mbps"])
def test_options_without_effect_are_refused(key: str) -> None:
    with pytest.raises(GfsError) as e:
        options.check(key, "1")
    assert e.value.code == "unknown_option" and "not supported" in e.value.message
    assert key not in options.markdown().split("| template |")[0]


def test_templates_use_only_options_in_the_table() -> None:
    for _, values in options.TEMPLATES.values():
        for k, v in values.items():
            options.check(k, v)
