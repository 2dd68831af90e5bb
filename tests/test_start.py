"""git worker start: a ready worker's agent, or again a stopped/failed/exited/vanished
one's, in its own worktree and branch — a transaction, refused while it runs."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conftest import GitRepo, Sandbox, alive, paused_at, release, wait_for


@pytest.fixture
def committer(sandbox: Sandbox, repo: GitRepo) -> Path:
    """An agent that keeps its prompt, waits until the test creates <runtime-dir>/go (and
    takes it: each run waits for its own), adds a line to notes.txt and commits it."""
    path = sandbox.script("committer-agent", """
        n=$(ls "$GIT_WORKER_RUNTIME_DIR"/seen.* 2>/dev/null | wc -l)
        cat > "$GIT_WORKER_RUNTIME_DIR/seen.$n"
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
        rm "$GIT_WORKER_RUNTIME_DIR/go"
        echo "run $n" >> notes.txt
        git add notes.txt && git commit -q -m "run $n of $GIT_WORKER_ID"
    """)
    repo.git("config", "worker.agent", "committer")
    repo.git("config", "worker.agent.committer.command", str(path))
    repo.git("config", "worker.launcher", "detached")
    return path


def test_start_a_ready_worker(repo: GitRepo, held: Path) -> None:
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.ok("start", "w1").out == "started w1 [running]\n"
    shown = repo.wait("w1", "running")
    assert shown["agent"] == "held" and shown["spawn_steps"][-1] == "launch"
    assert "start: running" in repo.ok("show", "w1", "--history").out
    release(repo, "w1")
    assert repo.wait("w1", "exited")["exit_code"] == 0


def test_start_again_continues_on_the_branch_and_says_what_is_there(repo: GitRepo,
                                                                   committer: Path) -> None:
    repo.ok("spawn", "w1")
    release(repo, "w1")
    repo.wait("w1", "exited")
    tip = repo.git("rev-parse", "worker/w1")
    worktree = repo.record("w1")["worktree"]
    # held until released: a quick agent may have exited before start prints its state
    assert repo.ok("start", "w1").out == "started w1 [running]\n"
    release(repo, "w1")
    repo.wait("w1", "exited")
    assert repo.record("w1")["worktree"] == worktree
    assert repo.git("log", "--format=%s", "main..worker/w1").splitlines() == \
        ["run 1 of w1", "run 0 of w1"]
    assert repo.git("rev-parse", "worker/w1~1") == tip
    runtime = repo.path / ".git" / "workers" / "w1"
    first, second = (runtime / "seen.0").read_text(), (runtime / "seen.1").read_text()
    assert "Already done" not in first
    assert second.startswith(first)
    assert f"{tip[:7]} run 0 of w1" in second and "already has 1 commit(s)" in second
    history = repo.ok("show", "w1", "--history").out
    assert history.count("start: running") == 1 and "spawn: running" in history


@pytest.mark.parametrize("how", ["stop", "fail", "vanish"])
def test_start_again_after_stop_failure_or_vanishing(repo: GitRepo, held: Path,
                                                     how: str) -> None:
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1", env={"AGENT_EXIT": "3"} if how == "fail" else None)
    pid = repo.wait("w1", "running")["launcher"]["pid"]
    if how == "stop":
        repo.ok("stop", "w1")
    elif how == "fail":
        release(repo, "w1")
        repo.wait("w1", "failed")
    else:
        os.killpg(pid, signal.SIGKILL)
        repo.wait("w1", "vanished")
    (repo.path / ".git" / "workers" / "w1" / "go").unlink(missing_ok=True)
    assert repo.ok("start", "w1").out == "started w1 [running]\n"
    shown = repo.wait("w1", "running")
    assert shown["exit_code"] is None and shown["problems"] == []
    release(repo, "w1")
    assert repo.wait("w1", "exited")["exit_code"] == 0


def test_start_refusals_say_what_changes_the_outcome(repo: GitRepo, held: Path) -> None:
    repo.git("config", "worker.launcher", "detached")
    repo.git("config", "worker.maxConcurrent", "1")
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    r = repo.worker("start", "w1")
    assert r.code == 1
    assert r.err == ("error: w1: 'w1' is running: its agent runs already\n"
                     "hint: to start it again, end it first: git worker stop w1\n")
    r = repo.worker("start", "nosuch")
    assert r.code == 1 and "nosuch" in r.err
    repo.ok("spawn", "w2", "--no-launch")
    before = repo.record("w2")
    r = repo.worker("start", "w2")
    assert r.code == 1 and "worker.maxConcurrent is 1 and 1 worker(s) are running (w1)" in r.err
    assert repo.record("w2") == before  # nothing changed, no history added
    assert repo.ok("start", "w2", "--queue").out.startswith("started w2 [queued]\n")
    r = repo.worker("start", "w2")
    assert r.code == 1 and "is queued already" in r.err
    release(repo, "w1")
    repo.wait("w2", "running")  # the queue: w1's runner starts it
    release(repo, "w2")
    repo.wait("w2", "exited")


def test_sigint_during_start_leaves_the_worker_as_it_was(sandbox: Sandbox, repo: GitRepo,
                                                         held: Path) -> None:
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1", "--no-launch")
    before, record = repo.snapshot(), repo.record("w1")
    proc, pid = paused_at(sandbox, repo, "start.launch", "start", "w1")
    try:
        agent = int((repo.path / ".git" / "workers" / "w1" / "agent.pid").read_text())
        assert alive(agent)
        os.kill(pid, signal.SIGINT)
        assert proc.wait(60) == 130, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_for(lambda: not alive(agent))
    assert repo.record("w1") == record
    assert repo.snapshot() == before
    assert repo.ok("start", "w1").out == "started w1 [running]\n"
    release(repo, "w1")
    repo.wait("w1", "exited")


def test_start_refuses_a_merged_worker_without_a_hint(repo: GitRepo) -> None:
    repo.work("w1", "a.txt")
    repo.ok("merge", "w1")
    r = repo.worker("start", "w1")
    assert r.code == 1
    assert r.err == ("error: w1: 'w1' is merged: there is no agent to start (start takes a "
                     "worker that is ready, stopped, failed, exited, vanished)\n")
