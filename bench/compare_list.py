"""`git worker list --json` of two (or more) checkouts, timed in one run, alternately.

    python bench/compare_list.py OLD_CHECKOUT NEW_CHECKOUT

100 workers in a 200-file repository: 30 with a commit, 10 with an edited file, and the
base one commit ahead. For each checkout: wall-clock median and minimum, and the CPU time
of the whole process with its git children (getrusage), which a loaded machine disturbs
far less than wall-clock. An old checkout can be made with:
    git archive <commit> git-worker lib | tar -x -C /tmp/old
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(checkouts: list[str]) -> int:
    root = Path(tempfile.mkdtemp(prefix="gw-compare-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(root), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="bench",
               GIT_AUTHOR_EMAIL="bench@example.com", GIT_COMMITTER_NAME="bench",
               GIT_COMMITTER_EMAIL="bench@example.com")
    repo = root / "repo"
    repo.mkdir()

    def git(*args: str, cwd: Path = repo) -> None:
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)

    git("init", "-q", "-b", "main")
    for n in range(200):
        (repo / f"f{n}.txt").write_text(f"{n}\n")
    git("add", "-A")
    git("commit", "-qm", "init")
    ids = [f"w{n:03d}" for n in range(100)]
    subprocess.run([sys.executable, f"{checkouts[0]}/git-worker", "spawn", *ids, "--no-launch"],
                   cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
    for worker_id in ids[:30]:
        worktree = root / "repo.workers" / worker_id
        (worktree / "x.txt").write_text("x\n")
        git("add", "x.txt", cwd=worktree)
        git("commit", "-qm", "x", cwd=worktree)
    for worker_id in ids[30:40]:
        (root / "repo.workers" / worker_id / "f1.txt").write_text("changed\n")
    (repo / "m.txt").write_text("m\n")
    git("add", "m.txt")
    git("commit", "-qm", "m")

    wall: dict[str, list[float]] = {c: [] for c in checkouts}
    cpu: dict[str, list[float]] = {c: [] for c in checkouts}
    for _ in range(int(os.environ.get("BENCH_RUNS", "21"))):
        for checkout in checkouts:
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run([sys.executable, f"{checkout}/git-worker", "list", "--json"],
                           cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall[checkout].append(time.perf_counter() - start)
            cpu[checkout].append(after.ru_utime + after.ru_stime
                                 - before.ru_utime - before.ru_stime)
    for checkout in checkouts:
        print(f"{checkout}: wall median {statistics.median(wall[checkout]) * 1000:.0f} ms, "
              f"min {min(wall[checkout]) * 1000:.0f} ms; CPU with its git children median "
              f"{statistics.median(cpu[checkout]) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
