"""What the reference-transaction hook costs plain git, with 50 workers registered.

python bench/hooks.py   (run from the checkout; `git-worker` need not be installed)

Measures `git commit` and `git branch X && git branch -D X` without the hook and with it,
alternating, median of each. Wall-clock for whole processes, as a user experiences them;
compare the figures of one run with each other, not across machines or loads.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
WORKERS = 50
CHECKOUT = Path(__file__).resolve().parent.parent


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(HOME=str(root), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="bench",
                   GIT_AUTHOR_EMAIL="bench@example.com", GIT_COMMITTER_NAME="bench",
                   GIT_COMMITTER_EMAIL="bench@example.com")
        repo = root / "repo"
        repo.mkdir()

        def git(*args: str) -> None:
            subprocess.run(["git", *args], cwd=repo, env=env, check=True,
                           stdout=subprocess.DEVNULL)

        def worker(*args: str) -> None:
            subprocess.run([sys.executable, str(CHECKOUT / "git-worker"), *args], cwd=repo,
                           env=env, check=True, stdout=subprocess.DEVNULL)

        git("init", "-q", "-b", "main")
        (repo / "f").write_text("0\n")
        git("add", "f")
        git("commit", "-q", "-m", "init")
        worker("spawn", *(f"w{n}" for n in range(WORKERS)), "--no-launch")

        def commit(n: int) -> float:
            (repo / "f").write_text(f"change {n}\n")
            start = time.perf_counter()
            git("commit", "-q", "-am", f"c{n}")
            return time.perf_counter() - start

        def branch_cycle(n: int) -> float:
            start = time.perf_counter()
            git("branch", f"t{n}")
            git("branch", "-q", "-D", f"t{n}")
            return time.perf_counter() - start

        results: dict[str, list[float]] = {}
        for n in range(RUNS):
            for hooked in (False, True):
                worker("hooks", "install" if hooked else "uninstall")
                label = "with hook" if hooked else "without"
                results.setdefault(f"commit {label}", []).append(commit(2 * n + hooked))
                results.setdefault(f"branch+delete {label}", []).append(
                    branch_cycle(2 * n + hooked))
        print(f"{WORKERS} workers registered, median of {RUNS} runs:")
        for name, times in results.items():
            print(f"  {name:24} {statistics.median(times) * 1000:6.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
