"""What came from outside (bd, agents, records, argv, git) reaches a terminal with its
control characters made visible: it cannot retitle the window, clear the screen or
overwrite lines. JSON stays exact (it escapes them itself)."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest

from conftest import GitRepo, Sandbox
from test_tracker import ISSUE, install_bd

# Retitle the window, clear the screen, go up a line and erase it (to forge one).
HOSTILE = "\x1b]0;pwned\x07 \x1b[2J \x1b[1A\x1b[2K fake"
SHOWN = "\\x1b]0;pwned\\x07 \\x1b[2J \\x1b[1A\\x1b[2K fake"


def _no_controls(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)


def test_a_bd_title_is_shown_not_obeyed(sandbox: Sandbox, repo: GitRepo) -> None:
    install_bd(sandbox, repo, show=json.dumps([{**ISSUE, "title": HOSTILE}]))
    repo.ok("spawn", "talu-gsga", "--no-launch")
    shown = repo.ok("show", "talu-gsga").out
    _no_controls(shown)
    assert f"task      {SHOWN}\n" in shown
    assert repo.show("talu-gsga")["task"]["title"] == HOSTILE  # JSON: exact


def _forge(repo: GitRepo, worker_id: str, **fields: object) -> None:
    """Rewrite the record with plain git, as anyone with ref write access can."""
    record = {**repo.record(worker_id), **fields}
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo.path, check=True,
                          input=json.dumps(record, indent=2), capture_output=True,
                          text=True).stdout.strip()
    tree = subprocess.run(["git", "mktree"], cwd=repo.path, check=True, capture_output=True,
                          input=f"100644 blob {blob}\tworker.json\n", text=True).stdout.strip()
    commit = repo.git("commit-tree", tree, "-p", f"refs/workers/{worker_id}", "-m",
                      f"forged {HOSTILE}")
    repo.git("update-ref", f"refs/workers/{worker_id}", commit)


def test_a_forged_record_is_shown_not_obeyed(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    _forge(repo, "w1", agent=HOSTILE, state=HOSTILE, base={**repo.record("w1")["base"],
                                                             "name": HOSTILE})
    listed = repo.ok("list").out
    _no_controls(listed)
    assert SHOWN in listed
    shown = repo.ok("show", "w1", "--history").out
    _no_controls(shown)
    assert f"forged {SHOWN}" in shown
    assert json.loads(repo.ok("list", "--json").out)[0]["agent"] == HOSTILE


@pytest.mark.parametrize("argv, words", [
    (["show", HOSTILE], f"error: no worker '{SHOWN}'"),
    (["spawn", HOSTILE, "--no-launch"], f"error: {SHOWN}: "),
    (["list", f"--{HOSTILE}"], f"unrecognized arguments: --{SHOWN}"),
    (["completion", HOSTILE], f"invalid choice: '{SHOWN}'"),
])
def test_argv_in_errors_is_shown_not_obeyed(repo: GitRepo, argv: list[str], words: str) -> None:
    r = repo.worker(*argv)
    assert r.code in (1, 2), r.err
    _no_controls(r.err)
    assert words in r.err


def _on_a_terminal(repo: GitRepo, *args: str) -> str:
    """`git worker ARGS` with its stdout on a pseudo-terminal; what it wrote there."""
    main, child = pty.openpty()
    proc = subprocess.Popen(["git", "worker", *args], cwd=repo.path, env=repo.sandbox.env,
                            stdin=subprocess.DEVNULL, stdout=child, stderr=subprocess.PIPE)
    os.close(child)
    data = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        data += chunk
    os.close(main)
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    return data.decode(errors="replace")


def test_an_agents_log_keeps_colour_but_not_control_on_a_terminal(sandbox: Sandbox,
                                                                  repo: GitRepo) -> None:
    agent = sandbox.script("loud-agent", r"""
        printf '\033[31mred\033[0m\n'
        printf '\033]0;pwned\007\033[2J\033[1A\033[2K fake\n'
    """)
    repo.git("config", "worker.agent", "loud")
    repo.git("config", "worker.agent.loud.command", str(agent))
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1")
    repo.wait("w1", "exited")
    shown = _on_a_terminal(repo, "logs", "w1")
    assert "\x1b[31mred\x1b[0m" in shown  # colour: kept
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[1A\\x1b[2K fake" in shown
    assert "\x1b]" not in shown and "\x1b[2J" not in shown
    piped = repo.ok("logs", "w1").out  # to a pipe: exactly what the agent wrote
    assert "\x1b]0;pwned\x07\x1b[2J\x1b[1A\x1b[2K fake" in piped


def test_a_prompt_with_a_hostile_title_on_a_terminal(sandbox: Sandbox, repo: GitRepo) -> None:
    install_bd(sandbox, repo, show=json.dumps([{**ISSUE, "title": HOSTILE}]))
    repo.ok("spawn", "talu-gsga", "--no-launch")
    shown = _on_a_terminal(repo, "prompt", "talu-gsga")
    _no_controls(shown)
    assert SHOWN in shown
    assert HOSTILE in repo.ok("prompt", "talu-gsga").out  # to a pipe: the file as it is
