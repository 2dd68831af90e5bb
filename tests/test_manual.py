"""The manual: complete (every command, option, setting, exit code), well-formed, and what
`git worker --help` opens from a checkout (after a plain `pip install`: tests/test_install.py)."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox

sys.path.insert(0, str(CHECKOUT / "lib"))

from git_worker import cli  # noqa: E402
from git_worker.config import SETTINGS  # noqa: E402

PAGE = CHECKOUT / "lib" / "git_worker" / "man" / "git-worker.1"

needs_man = pytest.mark.skipif(shutil.which("man") is None,
                               reason="man is not installed (.ci/run installs man-db)")


def rendered(sandbox: Sandbox, *argv: str, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> str:
    r = sandbox.run(*argv, cwd=cwd, env={"MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "80",
                                         **(env or {})})
    assert r.code == 0, r.err
    return r.out


def page_text() -> str:
    """The page's source with roff's escapes for '-' undone: what a reader sees."""
    return PAGE.read_text().replace("\\-", "-").replace("\\fB", "").replace("\\fR", "") \
        .replace("\\fI", "")


def test_every_command_and_option_of_the_parser_is_documented() -> None:
    text = page_text()
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, subparser in sub.choices.items():
        if not re.search(rf"^\.B {re.escape(name)}\b|\|\.?B?{re.escape(name)}\b",
                         text, re.MULTILINE) and f"git worker {name}" not in text:
            missing.append(f"command {name}")
        for action in subparser._actions:
            for option in action.option_strings:
                if option not in text:
                    missing.append(f"{name} {option}")
    for action in parser._actions:
        for option in action.option_strings:
            if option not in text:
                missing.append(option)
    assert missing == []


def test_every_setting_and_exit_code_is_documented() -> None:
    text = page_text()
    assert [s.key for s in SETTINGS if f".B {s.key}\n" not in text] == []
    exit_section = text[text.index(".SH EXIT STATUS"):text.index(".SH ENVIRONMENT")]
    for code in ("0", "1", "2", "3", "130"):
        assert f".B {code}\n" in exit_section
    assert (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_BUG,
            cli.EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)


def test_every_default_in_the_page_is_settings() -> None:
    """Each setting's entry states the default SETTINGS writes (the code reads it from
    there: tests/test_config.py), so the page cannot drift from what runs."""
    text = page_text()
    section = text[text.index(".SH CONFIGURATION"):text.index(".SH COMPLETION")]
    wrong = []
    for s in SETTINGS:
        if s.default is None or s.default.startswith("<"):  # none, or a description
            continue
        start = section.index(f".B {s.key}\n")
        entry = section[start:section.find("\n.TP", start)]
        # roff puts a highlighted word on a line of its own: `.BR claude .`
        flat = " ".join(re.sub(r"^\.[BI]R?\s+", "", line) for line in entry.splitlines())
        if not re.search(rf"Default: {re.escape(s.default)}(?![\w/-])", flat):
            wrong.append(s.key)
    assert wrong == []


@needs_man
def test_page_renders_without_warnings(sandbox: Sandbox) -> None:
    r = sandbox.run("man", "--warnings", "-l", PAGE, env={"MANPAGER": "cat", "MANWIDTH": "80"})
    assert r.code == 0
    assert r.err == ""
    assert "GIT-WORKER(1)" in r.out and "EXIT STATUS" in r.out


@needs_man
def test_help_from_a_checkout_opens_the_packaged_page(sandbox: Sandbox, repo: GitRepo) -> None:
    # The sandbox's git-worker runs the checkout: no page on MANPATH, so the path is used.
    out = rendered(sandbox, "git-worker", "--help", cwd=repo.path, env={"MANPATH": "/nonexistent"})
    assert out.startswith("GIT-WORKER(1)")
    assert "worker.maxConcurrent" in out


def test_help_without_man_prints_the_short_help(sandbox: Sandbox) -> None:
    # PATH holds git-worker alone: no man to open the page with.
    r = sandbox.run("git-worker", "--help", env={"PATH": str(sandbox.bin)})
    assert r.code == 0
    assert r.out.startswith("usage: git worker [-h] [--version] COMMAND ...")
    assert "spawn" in r.out
    assert r.err == ("git-worker: 'man' is not installed; showing the short help instead "
                     "(install man-db for the manual)\n")


def test_dash_h_prints_usage(repo: GitRepo) -> None:
    r = repo.ok("-h")
    assert r.out.startswith("usage: git worker [-h] [--version] COMMAND ...")
    assert "spawn" in r.out and "`git worker --help` opens the manual" in r.out.replace("\n", " ")
    r = repo.ok("spawn", "-h")
    assert r.out.startswith("usage: git worker spawn [-h]")


def test_every_state_is_documented() -> None:
    """The manual's STATES section lists exactly the closed set of states (State)."""
    from git_worker.registry.record import State

    text = page_text()
    states = text[text.index(".SH STATES"):text.index(".SH JSON OUTPUT")]
    documented = set(re.findall(r'^\.TP\n\.BI? "?([a-z]+)', states, re.MULTILINE))
    assert documented == set(State.ALL)
    named = {value for name, value in vars(State).items() if name.isupper() and name != "ALL"}
    assert set(State.ALL) == named and len(State.ALL) == len(named)  # ALL is every state


def test_readme_is_the_guide_and_keeps_no_settings_table() -> None:
    """Settings are described once, in the manual (checked against SETTINGS above):
    README shows a few by example and never a table of its own, which would drift."""
    readme = (CHECKOUT / "README.md").read_text()
    table_rows = [line for line in readme.splitlines() if re.match(r"\|\s*`worker\.", line)]
    assert table_rows == []
    assert "git worker --help" in readme
