"""Races between git-worker processes: whatever interleaving happens, the registry, the
branches and the worktrees agree afterwards (fsck is clean) and nothing is half-done."""

from __future__ import annotations

import subprocess

from conftest import GitRepo, Sandbox


def _start(sandbox: Sandbox, repo: GitRepo, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["git", "worker", *args], cwd=repo.path, env=sandbox.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_spawn_racing_rm_of_the_same_id(sandbox: Sandbox, repo: GitRepo) -> None:
    for round in range(3):
        repo.ok("spawn", "w1", "--no-launch")
        rm = _start(sandbox, repo, "rm", "w1")
        spawn = _start(sandbox, repo, "spawn", "w1", "--no-launch")
        codes = (rm.wait(60), spawn.wait(60))
        assert rm.returncode == 0, rm.stderr.read()
        if spawn.returncode != 0:
            assert "already exists" in spawn.stderr.read()
        repo.ok("fsck")
        records = repo.refs("refs/workers/")
        assert (records != {}) == (codes[1] == 0), (round, codes, records)
        if records:
            repo.ok("rm", "w1")
        assert repo.worktrees() == [str(repo.path)]


def test_two_rms_of_one_worker(sandbox: Sandbox, repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    procs = [_start(sandbox, repo, "rm", "w1") for _ in range(3)]
    codes = sorted(p.wait(60) for p in procs)
    assert codes[0] == 0, [p.stderr.read() for p in procs]
    assert repo.refs("refs/workers/") == {}
    assert "refs/heads/worker/w1" not in repo.refs()
    repo.ok("fsck")
