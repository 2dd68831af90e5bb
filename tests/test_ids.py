"""Ids are refused, with a reason, before anything is created."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import GitRepo
from git_worker import ids

HOSTILE = ["../x", "a/b", "-rf", "--all", "..", ".", "a..b", "x.lock", "x.", "has space",
           "tab\there", "nl\nx", "ctl\x01", "a" * 81, "HEAD", "FETCH_HEAD", "ORIG_HEAD", "@",
           "a@{1}", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "é", "", ".hidden", "_x",
           # bytes that are not UTF-8, as argv delivers them (PEP 383 surrogates)
           "\udcff\udcfe", "a\udce9b", "ok\udc80",
           "x" * 1000, "\u202eevil", "a\x7f", " lead", "trail ", "refs/heads/x", "a/../b",
           "...", "-", "@{-1}", "\t", "a.lock", "x.lock.", "AUTO_MERGE_HEAD",
           "\ufb01", "\uff41", "a\u200bb"]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_ids_are_refused(bad: str) -> None:
    assert ids.problem(bad) is not None


def test_hostile_ids_create_nothing(repo: GitRepo) -> None:
    before = repo.snapshot()
    usable = [b for b in HOSTILE if b and "\x00" not in b]
    r = repo.worker("spawn", "--no-launch", "--", *usable)
    assert r.code == 1
    assert r.err.count(": invalid worker id") == len(usable)
    assert repo.snapshot() == before


def test_real_ids_are_accepted() -> None:
    for good in ("talu-gsga", "bd-a3f8e9", "bd-a3f8e9.1", "T_1", "x" * 80):
        assert ids.validate(good) == good


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=20))
def test_valid_ids_are_valid_refs_and_stay_in_their_directory(candidate: str) -> None:
    import os
    import subprocess

    if ids.problem(candidate) is not None:
        return
    for ref in (f"refs/workers/{candidate}", f"refs/heads/worker/{candidate}"):
        assert subprocess.run(["git", "check-ref-format", ref]).returncode == 0
    root = "/tmp/root.workers"
    assert os.path.dirname(os.path.normpath(os.path.join(root, candidate))) == root


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=24))
def test_any_bytes_from_argv_are_refused_or_safe(raw: bytes) -> None:
    """Whatever bytes argv delivers: a reason, or an id that is a valid ref and a single
    path component below the worktree dir — never an exception."""
    import os
    import subprocess

    candidate = raw.decode("utf-8", "surrogateescape")
    why = ids.problem(candidate)
    if why is not None:
        assert isinstance(why, str) and why
        return
    assert subprocess.run(["git", "check-ref-format", f"refs/workers/{candidate}"]).returncode == 0
    root = "/tmp/root.workers"
    assert os.path.dirname(os.path.normpath(os.path.join(root, candidate))) == root


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("AZaz09._-_/@ HEADé\x00"), max_size=12)
       | st.from_regex(r"[A-Z_]{0,4}_?HEAD", fullmatch=True))
def test_ids_are_judged_as_the_regular_expressions_they_replaced(candidate: str) -> None:
    """ids.py checks its alphabet and git's *_HEAD names with sets (no `import re` on
    spawn's path): the same ids as the expressions it used before."""
    import re

    alphabet = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
    reserved = re.compile(r"(?:[A-Z_]*_)?HEAD\Z")
    before = None
    if not candidate:
        before = "it is empty"
    elif len(candidate) > ids.MAX_LENGTH:
        before = "long"
    elif candidate.startswith("-"):
        before = "dash"
    elif not alphabet.match(candidate):
        before = "alphabet"
    elif ".." in candidate or candidate.endswith((".", ".lock")):
        before = "dots"
    elif reserved.match(candidate):
        before = "git reserves that name"
    now = ids.problem(candidate)
    assert (now is None) == (before is None), (candidate, now, before)
    if before == "git reserves that name":
        assert now == before
