"""The counts in docs/reliability.md are the suite's own: derived here from the lists the
tests are parametrized over, the `race` mark and hypothesis' settings — so they cannot
drift."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from conftest import CHECKOUT
from git_worker import failpoints

RELIABILITY = CHECKOUT / "docs" / "reliability.md"


def section() -> str:
    """The whole of docs/reliability.md: the counts may be stated under any of its headings."""
    return RELIABILITY.read_text()


def all_test_modules() -> list[Any]:
    return [importlib.import_module(p.stem) for p in sorted((CHECKOUT / "tests").glob("test_*.py"))]


def cases(fn: Callable[..., object]) -> int:
    """How many test cases a (possibly parametrized) test function makes."""
    n = 1
    for mark in getattr(fn, "pytestmark", []):
        if mark.name == "parametrize":
            n *= len(mark.args[1])
    return n


def races() -> dict[str, int]:
    found = {}
    for module in all_test_modules():
        for name, fn in vars(module).items():
            marks = getattr(fn, "pytestmark", [])
            if name.startswith("test_") and any(m.name == "race" for m in marks):
                found[name] = cases(fn)
    return found


def properties() -> dict[str, int]:
    found = {}
    for module in all_test_modules():
        for name, fn in vars(module).items():
            used = getattr(fn, "_hypothesis_internal_use_settings", None)
            if name.startswith("test_") and used is not None:
                found[name] = used.max_examples
    return found


def counts() -> dict[str, str]:
    import test_config
    import test_faults
    import test_hostile
    import test_ids
    import test_tracker

    steps, actions = len(failpoints.STEPS), len(failpoints.ACTIONS)
    return {
        "faults": f"{steps} steps × {actions} actions ({', '.join(failpoints.ACTIONS)}) "
                  f"= {steps * actions} fault cases",
        "spawn": f"spawn: {len(test_faults.SPAWN)} steps",
        "rm": f"rm: {len(test_faults.RM)} steps",
        "merge": f"merge: {len(test_faults.MERGE)} steps",
        "start": f"start: {len(test_faults.START)} step",
        "races": f"{sum(races().values())} race tests",
        "ids": f"{len(test_ids.HOSTILE)} hostile ids",
        "settings": f"{len(test_hostile.SETTINGS)} bad settings",
        "spellings": f"{len(test_config.SPELLINGS)} boolean spellings",
        "bd": f"{len(test_hostile.BD_OUTPUT) + len(test_tracker.BD_FAILURES)} bd answers",
        "task": f"{len(test_hostile.TASK_TEXT)} task texts",
        "registry": f"{len(test_hostile.REGISTRY)} broken registry records",
        "hooks": f"{len(test_hostile.HOOK_INPUT)} agent hook inputs",
        "properties": f"{len(properties())} property tests, "
                      f"{sum(properties().values())} generated examples per run",
    }


@pytest.mark.parametrize("what", ["faults", "spawn", "rm", "merge", "start", "races", "ids",
                                  "settings", "spellings", "bd", "task", "registry",
                                  "hooks", "properties"])
def test_reliability_doc_states_the_count(what: str) -> None:
    assert counts()[what] in section(), f"docs/reliability.md should say: {counts()[what]}"


def test_reliability_doc_names_every_race_and_property_test() -> None:
    text = section()
    for name in races():
        assert f"`{name.removeprefix('test_')}`" in text, name
    for name, n in properties().items():
        assert f"`{name.removeprefix('test_')}` ({n})" in text, name
