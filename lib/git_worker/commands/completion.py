"""git worker completion bash|zsh|fish: print the shell's completion script.

The scripts are package data (git_worker/shell/), so `make install` can copy the very
same files where each shell looks for them.
"""

from __future__ import annotations

import sys

from git_worker import installation

SCRIPTS = {"bash": installation.BASH_COMPLETION, "zsh": installation.ZSH_COMPLETION,
           "fish": installation.FISH_COMPLETION}


def path(shell: str) -> str:
    return installation.location(SCRIPTS[shell])


def run(shell: str) -> int:
    with open(installation.require(SCRIPTS[shell]), encoding="utf-8") as f:
        sys.stdout.write(f.read())
    return 0
