"""make bench: git-worker's speed next to git's own, measured in one run.

- spawn: `git worker spawn --no-launch` vs `git worktree add -b`, 5,000-file repository,
  alternating runs, median of each and their ratio (target ≤ 1.2x).
- list: `git worker list --json` with 100 workers, whole process (target ≤ 150 ms).
- completion: worker-id completion with 100 workers (bench/completion.py, if present).
- watch: one refresh of the dashboard with 100 workers, CPU time of its own process
  (bench/watch.py; target ≤ 50 ms).

Timings are wall-clock for whole processes, as a user experiences them. They vary with the
machine and its load: compare the figures of one run with each other, not across runs.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "11"))
FILES = 5000


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="bench",
               GIT_AUTHOR_EMAIL="bench@example.com", GIT_COMMITTER_NAME="bench",
               GIT_COMMITTER_EMAIL="bench@example.com")
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def make_repo(path: Path, env: dict[str, str], files: int) -> None:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, env=env, check=True)
    for n in range(files):
        d = path / f"dir{n // 100:03d}"
        d.mkdir(exist_ok=True)
        (d / f"file{n:05d}.txt").write_text(f"line {n}\n" * 20)
    subprocess.run(["git", "add", "-A"], cwd=path, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=path, env=env, check=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def bench_spawn(root: Path, env: dict[str, str]) -> dict[str, float]:
    repo = root / "big"
    make_repo(repo, env, FILES)
    ours, git = [], []
    for n in range(RUNS):
        git.append(timed(["git", "worktree", "add", "-q", "-b", f"plain{n}",
                          str(root / "plain" / f"p{n}")], repo, env))
        ours.append(timed(["git", "worker", "spawn", "--no-launch", f"w{n}"], repo, env))
    result = {"git_worktree_add": statistics.median(git), "spawn": statistics.median(ours)}
    result["ratio"] = result["spawn"] / result["git_worktree_add"]
    return result


def bench_list(root: Path, env: dict[str, str]) -> dict[str, float]:
    repo = root / "small"
    make_repo(repo, env, 10)
    ids = [f"w{n:03d}" for n in range(100)]
    subprocess.run(["git", "worker", "spawn", "--no-launch", *ids], cwd=repo, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "base moves"], cwd=repo,
                   env=env, check=True)
    times = [timed(["git", "worker", "list", "--json"], repo, env) for _ in range(RUNS)]
    return {"list_json_100": statistics.median(times)}


def bench_watch_refresh(root: Path, env: dict[str, str]) -> dict[str, float]:
    """CPU time of one `git worker watch` refresh, in the repository bench_list filled."""
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "watch.py"), str(RUNS)],
                         cwd=root / "small", env=env, check=True, capture_output=True,
                         text=True).stdout.split()
    return {"refresh": float(out[0]), "dashboard": float(out[1]), "workers": float(out[2])}


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="git-worker-bench-"))
    env = env_for(root)
    try:
        print(f"git-worker benchmarks ({RUNS} runs each, medians; {os.cpu_count()} cores)")
        spawn = bench_spawn(root, env)
        print(f"  git worktree add -b ({FILES} files)        {ms(spawn['git_worktree_add'])}")
        print(f"  git worker spawn --no-launch ({FILES} files) {ms(spawn['spawn'])}"
              f"   ratio {spawn['ratio']:.2f}x (target <= 1.2x)")
        listed = bench_list(root, env)
        print(f"  git worker list --json (100 workers)       "
              f"{ms(listed['list_json_100'])}   (target <= 150 ms)")
        watch = bench_watch_refresh(root, env)
        print(f"  git worker watch, {watch['workers']:.0f} workers: one refresh "
              f"{ms(watch['refresh'])} CPU, with the table drawn {ms(watch['dashboard'])} CPU"
              f"   (target <= 50 ms)")
        sys.path.insert(0, str(Path(__file__).parent))
        import completion  # bench/completion.py

        print(completion.report(completion.measure(runs=max(RUNS, 10), workers=100)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
