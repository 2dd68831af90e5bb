"""git worker watch: the live dashboard, or (--once) its table printed once."""

from __future__ import annotations

import sys

from git_worker import output
from git_worker.errors import WorkerError
from git_worker.repo import Repo


def run(repo: Repo, *, show_all: bool, once: bool) -> int:
    if once:
        return _print_once(repo, show_all=show_all)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise WorkerError("the dashboard needs a terminal",
                          hint="for scripts and pipes: git worker watch --once")
    from git_worker.dashboard import app  # Textual: only here, never for --once

    return app.run(repo, show_all=show_all)


def _print_once(repo: Repo, *, show_all: bool) -> int:
    from git_worker.dashboard import model

    snapshot = model.take(repo, show_all=show_all)
    if not snapshot.rows:
        print("no workers; start one with: git worker spawn ID")
        return 0
    lines = model.text_table(snapshot.rows).split("\n")
    print(output.paint(lines[0], "bold"))
    for line in lines[1:]:
        print(line)
    print(model.conflict_line(repo).text)
    return 0
