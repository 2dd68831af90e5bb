"""git worker version (and --version): what runs, from where, on what."""

from __future__ import annotations

from git_worker import installation


def run() -> int:
    facts = installation.describe()
    print(f"git-worker {facts.pop('version')}")
    width = max(len(key) for key in facts) + 1
    for key, value in facts.items():
        print(f"{key + ':':<{width}} {value}")
    return 0
