"""Completion latency: the whole `git-worker` process answering a TAB, as a shell runs it.

    python bench/completion.py [--runs N] [--workers N] [--json]     (or: make bench)

Sets up a scratch repository with N workers (real ones, `spawn --no-launch`), then times
`git-worker` answering argcomplete's protocol:
  - worker ids (`git worker rm w-<TAB>`): the fast path; target: median <= 40 ms;
  - a subcommand (`git worker sp<TAB>`): argcomplete on the real parser, for comparison;
  - `python -c pass` with the same interpreter, and its #! line's options (the lean
    launcher's -S): the floor no completion can beat.
The three are run in turn, round after round, so that a busy machine slows them alike;
"overhead" is the median of (completion - floor) over the rounds.
`measure()` returns the figures (a dict); bench/run.py uses `worker_ids_in()` on the
registries it builds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
TARGET_MS = 40.0
_IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
             "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git_worker_argv() -> list[str]:
    """The git-worker on PATH (make bench puts .venv/bin first), else this checkout's."""
    found = shutil.which("git-worker")
    return [found] if found else [sys.executable, str(CHECKOUT / "git-worker")]


def interpreter(argv: list[str]) -> list[str]:
    """The Python that runs git-worker, with the options its #! line gives it (read from
    that line): Python doing nothing, so started, is the floor."""
    if "python" in os.path.basename(argv[0]):
        return argv[:1]
    with open(argv[0], "rb") as f:
        words = f.readline().decode(errors="replace")[2:].split()
    if words[:1] == ["/usr/bin/env"] and len(words) > 1:
        words = [shutil.which(words[1]) or ""]
    found = words[0] if words else ""
    return words if "python" in os.path.basename(found) else [sys.executable]


def _timed(argv: list[str], cwd: Path, env: dict[str, str] | None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - start) * 1000


def _request(line: str, out: Path) -> dict[str, str]:
    return {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash",
            "_ARGCOMPLETE_SUPPRESS_SPACE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples), 1), "min_ms": round(min(samples), 1),
            "max_ms": round(max(samples), 1)}


def worker_ids_in(repo: Path, env: dict[str, str], *, workers: int, runs: int,
                  python: list[str]) -> tuple[float, float]:
    """Medians (ms) of worker-id completion in ``repo`` (ids w-…) and of `python -c pass`
    (``python``: `interpreter()`'s), run in turn; for bench/run.py, whose registries are
    built already."""
    argv = git_worker_argv()
    out = repo.parent / "completion.out"
    request = {**_request("git-worker rm w-", out), **env}
    _timed(argv, repo, request)  # warm the page cache and the .pyc files
    candidates = out.read_text().split("\013")
    if len(candidates) != workers:
        raise RuntimeError(f"expected {workers} ids, got {len(candidates)}: {candidates[:5]}…")
    floor, ids = [], []
    for _ in range(runs):
        floor.append(_timed([*python, "-c", "pass"], repo, None))
        ids.append(_timed(argv, repo, request))
    return statistics.median(ids), statistics.median(floor)


def measure(runs: int = 15, workers: int = 100) -> dict[str, object]:
    """Whole-process completion latency with ``workers`` workers (median of ``runs``)."""
    argv = git_worker_argv()
    python = interpreter(argv)
    with tempfile.TemporaryDirectory(prefix="git-worker-bench-") as tmp:
        repo, out = Path(tmp) / "repo", Path(tmp) / "completion.out"
        repo.mkdir()
        env = {**os.environ, **_IDENTITY}
        for cmd in (["git", "init", "-q", "-b", "main"],
                    ["git", "commit", "-q", "--allow-empty", "-m", "bench"],
                    [*argv, "spawn", *[f"w-{i:03d}" for i in range(workers)], "--no-launch"]):
            subprocess.run(cmd, cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
        ids_env, sub_env = _request("git-worker rm w-", out), _request("git-worker sp", out)
        _timed(argv, repo, ids_env)  # warm the page cache and the .pyc files
        candidates = out.read_text().split("\013")
        if len(candidates) != workers:
            raise RuntimeError(f"expected {workers} ids, got {candidates[:5]}…")
        _timed(argv, repo, sub_env)
        floor, ids, sub = [], [], []
        for _ in range(runs):
            floor.append(_timed([*python, "-c", "pass"], repo, None))
            ids.append(_timed(argv, repo, ids_env))
            sub.append(_timed(argv, repo, sub_env))
    result: dict[str, object] = {
        "workers": workers, "runs": runs, "git_worker": " ".join(argv), "target_ms": TARGET_MS,
        "worker_ids": {**_summary(ids), "overhead_ms": round(statistics.median(
            i - f for i, f in zip(ids, floor, strict=True)), 1)},
        "subcommand_argcomplete": {**_summary(sub), "overhead_ms": round(statistics.median(
            s - f for s, f in zip(sub, floor, strict=True)), 1)},
        "python_floor": {"argv": " ".join(["python", *python[1:], "-c", "pass"]),
                         **_summary(floor)},
    }
    result["met"] = statistics.median(ids) <= TARGET_MS
    return result


def report(r: dict[str, object]) -> str:
    ids, sub, floor = r["worker_ids"], r["subcommand_argcomplete"], r["python_floor"]
    assert isinstance(ids, dict) and isinstance(sub, dict) and isinstance(floor, dict)
    return "\n".join([
        f"completion latency, whole process, {r['workers']} workers, median of {r['runs']}"
        f" ({r['git_worker']})",
        f"  worker ids  `git worker rm w-<TAB>`  {ids['median_ms']:6} ms  (min {ids['min_ms']},"
        f" max {ids['max_ms']}; python + {ids['overhead_ms']} ms)  target <= {r['target_ms']}"
        f" ms: {'met' if r['met'] else 'MISSED'}",
        f"  subcommand  `git worker sp<TAB>`     {sub['median_ms']:6} ms  (min {sub['min_ms']};"
        f" python + {sub['overhead_ms']} ms; argcomplete on the real parser)",
        f"  {floor['argv'] + ' (the floor)':35} {floor['median_ms']:6} ms  (min {floor['min_ms']})",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description="completion latency of git-worker")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.runs, args.workers)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
