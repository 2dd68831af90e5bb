"""worker.maxConcurrent: more spawns than allowed fail clearly, or queue with --queue and
start as running workers end."""

from __future__ import annotations

from pathlib import Path

from conftest import GitRepo, release


def test_over_the_limit_fails_clearly_and_creates_nothing(repo: GitRepo, held: Path) -> None:
    repo.git("config", "worker.maxConcurrent", "2")
    repo.ok("spawn", "a", "b")
    repo.wait("a", "running")
    before = repo.snapshot()
    r = repo.worker("spawn", "c")
    assert r.code == 1
    assert "error: c: worker.maxConcurrent is 2 and 2 worker(s) are running (a, b)" in r.err
    assert "pass --queue" in r.err
    assert repo.snapshot() == before
    release(repo, "a")
    repo.wait("a", "exited")
    repo.ok("spawn", "c")  # a slot is free again
    assert repo.wait("c", "running")["state"] == "running"


def test_queued_workers_start_as_running_ones_end(repo: GitRepo, held: Path) -> None:
    repo.git("config", "worker.maxConcurrent", "1")
    r = repo.ok("spawn", "a", "b", "c", "--queue")
    assert "queued: worker.maxConcurrent (1) agents are running" in r.out
    assert repo.wait("a", "running")["state"] == "running"
    assert repo.record("b")["state"] == "queued" and repo.record("c")["state"] == "queued"
    r = repo.worker("logs", "b")
    assert r.code == 1 and "'b' has no agent output: no agent has started (state queued)" in r.err
    release(repo, "a")
    repo.wait("a", "exited")
    repo.wait("b", "running")  # started by a's runner, oldest first
    assert repo.record("c")["state"] == "queued"
    assert "queue: started" in repo.ok("show", "b", "--history").out
    repo.ok("stop", "b")  # stopping frees a slot too
    repo.wait("c", "running")
    release(repo, "c")
    assert repo.wait("c", "exited")["exit_code"] == 0


def test_stopping_a_queued_worker(repo: GitRepo, held: Path) -> None:
    repo.git("config", "worker.maxConcurrent", "1")
    repo.ok("spawn", "a", "b", "--queue")
    assert repo.ok("stop", "b").out == "b: stopped (it was queued; no agent had started)\n"
    release(repo, "a")
    repo.wait("a", "exited")
    assert repo.record("b")["state"] == "stopped"


def test_removing_a_running_worker_frees_its_slot(repo: GitRepo, held: Path) -> None:
    repo.git("config", "worker.maxConcurrent", "1")
    repo.ok("spawn", "a", "b", "--queue")
    repo.wait("a", "running")
    assert repo.record("b")["state"] == "queued"
    repo.ok("rm", "--force", "a")
    assert repo.wait("b", "running")["state"] == "running"
    release(repo, "b")
    repo.wait("b", "exited")
