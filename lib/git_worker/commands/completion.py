"""git worker completion bash|zsh|fish: print the shell's completion script.

The scripts are package data (git_worker/shell/), so `make install` can copy the very
same files where each shell looks for them.
"""

from __future__ import annotations

import os
import sys

SCRIPTS = {"bash": "git-worker.bash", "zsh": "_git-worker", "fish": "git-worker.fish"}


def path(shell: str) -> str:
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "shell", SCRIPTS[shell])


def run(shell: str) -> int:
    with open(path(shell), encoding="utf-8") as f:
        sys.stdout.write(f.read())
    return 0
