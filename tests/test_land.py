"""git worker land: the target only ever moves to a result that passed the gate, combined."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox, alive, wait_for


def _gate(sandbox: Sandbox, repo: GitRepo) -> Path:
    """A gate that checks the combination: a caller of old_name needs old_name in api.txt.
    It logs "PASS|FAIL <commit> <its directory> <worker>" to gate.log; for the worker named
    in $HOLD_FOR it first writes its pid and waits for a file that never comes."""
    log = sandbox.root / "gate.log"
    sandbox.script("combo-gate", f"""
        if [ "$GIT_WORKER_ID" = "${{HOLD_FOR:-}}" ]; then
            echo "$$ $PWD" > {sandbox.root}/held.pid
            while [ ! -e {sandbox.root}/never ]; do sleep 0.05; done
        fi
        if [ -f caller.txt ] && ! grep -q old_name api.txt; then
            echo "caller.txt calls old_name, which api.txt no longer has"
            echo "FAIL $GIT_WORKER_COMMIT $PWD $GIT_WORKER_ID" >> {log}
            exit 1
        fi
        echo "PASS $GIT_WORKER_COMMIT $PWD $GIT_WORKER_ID" >> {log}
    """)
    repo.git("config", "worker.reviewGate", "combo-gate")
    return log


def _three(repo: GitRepo) -> None:
    """w1 renames old_name; w2 is unrelated; w3 adds a caller of old_name. Alone, each is
    fine; w3 combined with w1 is not."""
    repo.commit("api.txt", "def old_name\n")
    repo.work("w1", "api.txt", "def new_name\n", "rename old_name to new_name")
    repo.work("w2", "docs.txt", "docs\n")
    repo.work("w3", "caller.txt", "calls old_name\n")


def _gate_runs(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def _main_moves(repo: GitRepo, since: int) -> list[str]:
    lines = (repo.path / ".git" / "logs" / "refs" / "heads" / "main").read_text().splitlines()
    return [line.split()[1] for line in lines[since:]]


def _reflog_length(repo: GitRepo) -> int:
    return len((repo.path / ".git" / "logs" / "refs" / "heads" / "main").read_text().splitlines())


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batch"])
def test_target_moves_only_to_results_that_passed(repo: GitRepo, sandbox: Sandbox,
                                                  batch: bool) -> None:
    log = _gate(sandbox, repo)
    _three(repo)
    for w in ("w1", "w2", "w3"):
        assert repo.worker("review", w).code == 0, w  # each passes alone
    log.unlink()
    start = _reflog_length(repo)

    r = repo.worker("land", "--all", *(["--batch"] if batch else []))
    assert r.code == 1, r.out + r.err  # one was blocked
    rows = {line.split()[0]: line.split()[1] for line in r.out.splitlines()[1:4]}
    assert rows == {"w1": "landed", "w2": "landed", "w3": "blocked"}
    assert "combined with w1, w2" in r.out

    runs = _gate_runs(log)
    passed = {run[1] for run in runs if run[0] == "PASS"}
    failed = {run[1] for run in runs if run[0] == "FAIL"}
    moves = _main_moves(repo, start)
    assert moves and set(moves) <= passed  # never to anything the gate did not pass
    assert not set(moves) & failed
    main = repo.git("rev-parse", "main")
    assert main == moves[-1]
    if batch:  # all three fail together; then w1 | w2 + w3 → w2 | w3
        assert [run[0] for run in runs] == ["FAIL", "PASS", "FAIL", "PASS", "FAIL"]
    else:
        assert [run[0] for run in runs] == ["PASS", "PASS", "FAIL"]
        assert [run[3] for run in runs] == ["w1", "w2", "w3"]

    # The user's checked-out main has the landed work, and nothing of w3.
    assert (repo.path / "api.txt").read_text() == "def new_name\n"
    assert (repo.path / "docs.txt").exists() and not (repo.path / "caller.txt").exists()
    assert repo.git("status", "--porcelain") == ""
    for w in ("w1", "w2"):
        assert repo.record(w)["state"] == "merged"
        assert repo.git("merge-base", "--is-ancestor", f"worker/{w}", "main", ok=False) == ""
    w3 = repo.record("w3")
    assert w3["state"] != "merged" and w3["review"]["status"] == "blocked"
    assert w3["review"]["combined_with"] == ["w1", "w2"]
    history = repo.git("log", "--format=%s", "refs/workers/w3")
    assert "review: blocked (combined with w1, w2)" in history.splitlines()
    # Every scratch checkout is gone, and git knows of none.
    assert all(not Path(run[2]).exists() for run in runs)
    assert sorted(repo.worktrees()) == sorted(
        [str(repo.path), *(str(repo.workers_dir / w) for w in ("w1", "w2", "w3"))])


def test_conflicting_worker_is_skipped_and_the_queue_goes_on(repo: GitRepo,
                                                             sandbox: Sandbox) -> None:
    _gate(sandbox, repo)
    repo.commit("shared.txt", "base\n")
    repo.work("a", "shared.txt", "a\n")
    repo.work("b", "shared.txt", "b\n")
    repo.work("c", "other.txt")
    repo.git("config", "worker.review", "true")  # never reviewed alone: land's gate decides
    r = repo.worker("land", "a", "b", "c", "--json")
    assert r.code == 1
    results = {x["id"]: x for x in json.loads(r.out)}
    assert results["a"]["result"] == "landed" and results["c"]["result"] == "landed"
    assert results["b"]["result"] == "skipped"
    # c collides with nobody: first; then a; b conflicts with what a brought.
    assert [x["id"] for x in json.loads(r.out)] == ["c", "a", "b"]
    assert results["b"]["why"] == "conflicts with main + c, a in shared.txt"
    assert results["a"]["commit"] == repo.git("rev-parse", "main")
    assert repo.record("b")["state"] != "merged"


def test_dry_run_moves_nothing_and_runs_no_gate(repo: GitRepo, sandbox: Sandbox) -> None:
    log = _gate(sandbox, repo)
    _three(repo)
    before = repo.refs()
    r = repo.ok("land", "--all", "--dry-run")
    assert r.out.count("would test") == 3
    assert "merge commit onto main after w1, w2" in r.out
    assert repo.refs() == before and not log.exists()


def test_tag_base_needs_into_and_unknown_or_empty_workers(repo: GitRepo, sandbox: Sandbox) -> None:
    _gate(sandbox, repo)
    repo.git("tag", "v1")
    repo.ok("spawn", "t", "-f", "v1", "--no-launch")
    repo.work("t", "t.txt")
    repo.ok("spawn", "empty", "--no-launch")
    r = repo.worker("land", "t", "empty")
    assert r.code == 1
    assert ("the base v1 is not a branch (a tag?): there is no branch to merge into; "
            "pass --into BRANCH") in r.out
    assert "nothing to land (state ready)" in r.out
    assert repo.worker("land", "nosuch").code == 1
    assert repo.worker("land").code == 2
    r = repo.ok("land", "t", "--into", "main")
    assert repo.git("show", "main:t.txt") == "t.txt"


def test_missing_gate_refuses_before_anything(repo: GitRepo) -> None:
    repo.work("w1", "a.txt")
    before = repo.refs()
    r = repo.worker("land", "w1")
    assert r.code == 1 and "review gate 'review-gate' not found" in r.err
    assert repo.refs() == before


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_land_interrupted_leaves_the_last_landed_result(repo: GitRepo, sandbox: Sandbox,
                                                        how: signal.Signals) -> None:
    log = _gate(sandbox, repo)
    _three(repo)
    held = sandbox.root / "held.pid"
    # The real process: python running git-worker, in a session of its own (a terminal's ^C
    # goes to the foreground group; SIGKILL to the process alone).
    proc = subprocess.Popen([sys.executable, str(CHECKOUT / "git-worker"), "land", "--all"],
                            cwd=repo.path, env={**sandbox.env, "HOLD_FOR": "w2"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        wait_for(held.exists)
        wait_for(lambda: " " in held.read_text())
        gate_pid, scratch = held.read_text().split()
        landed_w1 = [run[1] for run in _gate_runs(log) if run[3] == "w1"]
        if how == signal.SIGINT:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, how)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (130 if how != signal.SIGKILL else -signal.SIGKILL)

    assert landed_w1 and repo.git("rev-parse", "main") == landed_w1[0]
    assert repo.record("w1")["state"] == "merged"
    for w in ("w2", "w3"):
        assert repo.record(w)["state"] != "merged"
        assert repo.git("merge-base", "--is-ancestor", f"worker/{w}", "main", ok=False) == ""
        assert repo.sandbox.run("git", "merge-base", "--is-ancestor", f"worker/{w}", "main",
                                cwd=repo.path).code == 1
    assert repo.git("status", "--porcelain") == ""

    def cleaned() -> bool:
        gone = not alive(gate_pid)
        return gone and not Path(scratch).exists() and len(repo.worktrees()) == 4

    wait_for(cleaned)  # the reaper's work, also after SIGKILL
    assert sorted(repo.worktrees()) == sorted(
        [str(repo.path), *(str(repo.workers_dir / w) for w in ("w1", "w2", "w3"))])
    assert not list((repo.path / ".git" / "worktrees").glob("tree*"))

    # The queue takes up where it stopped.
    (sandbox.root / "held.pid").unlink()
    r = repo.worker("land", "--all")
    assert "w2" in r.out and repo.record("w2")["state"] == "merged"


def test_a_signal_between_moving_the_target_and_recording_it_waits(repo: GitRepo,
                                                                   sandbox: Sandbox) -> None:
    _gate(sandbox, repo)
    repo.work("w1", "a.txt")
    repo.commit("main.txt", "main moved on\n")
    r = repo.worker("land", "w1", env={"GIT_WORKER_FAILPOINTS": "merge.record:interrupt"})
    assert r.code == 130, r.out + r.err
    record = repo.record("w1")  # ^C came after the target moved: the merge is recorded too
    assert record["state"] == "merged"
    assert record["merge"]["commit"] == repo.git("rev-parse", "main")
