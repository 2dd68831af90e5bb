"""Spawn is a transaction: every failure leaves the repository exactly as it was; a spawner
killed mid-way is recovered by fsck --repair (or by the next spawn of that id). The full
matrix of failpoints (every step x error/kill/crash) is in test_faults.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import GitRepo, Sandbox, wait_for


def test_failing_setup_command_rolls_everything_back(repo: GitRepo, agent) -> None:
    repo.git("config", "--add", "worker.setup", "sh -c 'echo installing; exit 3'")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1")
    assert r.code == 1
    assert "setup command 'sh -c 'echo installing; exit 3'' failed (exit 3)" in r.err
    assert "installing" in r.err
    assert repo.snapshot() == before


def test_setup_commands_run_in_the_new_worktree(repo: GitRepo) -> None:
    repo.git("config", "--add", "worker.setup", "touch setup-ran")
    repo.git("config", "--add", "worker.setup", "sh -c 'echo $GIT_WORKER_ID > id.txt'")
    repo.ok("spawn", "w1", "--no-launch")
    assert (repo.workers_dir / "w1" / "setup-ran").exists()
    assert (repo.workers_dir / "w1" / "id.txt").read_text() == "w1\n"


def test_agent_that_cannot_start_rolls_everything_back(repo: GitRepo) -> None:
    repo.git("config", "worker.agent.ghost.command", "no-such-agent-binary --flag")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-a", "ghost")
    assert r.code == 1
    assert "cannot start agent 'ghost'" in r.err and "no-such-agent-binary" in r.err
    assert "git config worker.agent.ghost.command" in r.err
    assert repo.snapshot() == before


def test_unknown_agent_rolls_everything_back(repo: GitRepo) -> None:
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-a", "nobody")
    assert r.code == 1
    assert "unknown agent 'nobody'" in r.err
    assert repo.snapshot() == before


def test_worktree_path_taken_by_someones_files(repo: GitRepo) -> None:
    taken = repo.workers_dir / "w1"
    taken.mkdir(parents=True)
    (taken / "precious.txt").write_text("mine")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1
    assert f"worktree path {taken} already exists" in r.err
    assert repo.snapshot() == before
    assert (taken / "precious.txt").read_text() == "mine"


def test_untracked_files_are_copied(repo: GitRepo) -> None:
    (repo.path / ".env").write_text("SECRET=1\n")
    (repo.path / "config").mkdir()
    (repo.path / "config" / "local.toml").write_text("x = 1\n")
    repo.git("config", "--add", "worker.copy", ".env")
    repo.git("config", "--add", "worker.copy", "config/*.toml")
    repo.ok("spawn", "w1", "--no-launch")
    assert (repo.workers_dir / "w1" / ".env").read_text() == "SECRET=1\n"
    assert (repo.workers_dir / "w1" / "config" / "local.toml").read_text() == "x = 1\n"


def test_work_of_an_agent_started_before_the_kill_is_kept(repo: GitRepo, agent) -> None:
    r = repo.worker("spawn", "w1", env={"GIT_WORKER_FAILPOINTS": "spawn.launch:kill"})
    assert r.code == 137
    repo.wait("w1", "spawning")
    main = repo.git("rev-parse", "main")
    wait_for(lambda: repo.git("rev-parse", "worker/w1") != main)  # the agent commits
    fsck = repo.worker("fsck", "--repair")
    assert "kept its work (state failed)" in fsck.out
    assert repo.record("w1")["state"] == "failed"
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "work on w1"
    assert (repo.workers_dir / "w1" / "work.txt").exists()
    repo.ok("fsck")


def test_next_spawn_finishes_an_abandoned_rollback(repo: GitRepo) -> None:
    r = repo.worker("spawn", "w1", "--no-launch",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.worktree:kill"})
    assert r.code == 137  # git: "git-worker died of signal 9"
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.record("w1")["state"] == "ready"
    assert repo.worktrees().count(str(repo.workers_dir / "w1")) == 1


def _spawn_many(sandbox: Sandbox, repo: GitRepo, ids: list[str]) -> list[tuple[int, str]]:
    procs = [subprocess.Popen(["git", "worker", "spawn", i, "--no-launch"], cwd=repo.path,
                              env=sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in ids]
    return [(p.wait(60), p.stderr.read()) for p in procs]


@pytest.mark.race
def test_concurrent_spawns_of_one_id_have_one_winner(sandbox: Sandbox, repo: GitRepo) -> None:
    results = _spawn_many(sandbox, repo, ["same"] * 6)
    assert sorted(code for code, _ in results) == [0, 1, 1, 1, 1, 1]
    for code, err in results:
        if code:
            assert "worker 'same' already exists" in err
    assert repo.worktrees().count(str(repo.workers_dir / "same")) == 1
    assert list(repo.refs("refs/workers/")) == ["refs/workers/same"]
    repo.ok("fsck")


@pytest.mark.race
def test_parallel_spawns_of_distinct_ids_all_succeed(sandbox: Sandbox, repo: GitRepo) -> None:
    ids = [f"w{n}" for n in range(6)]
    results = _spawn_many(sandbox, repo, ids)
    assert [code for code, _ in results] == [0] * 6, results
    assert sorted(repo.refs("refs/workers/")) == sorted(f"refs/workers/{i}" for i in ids)
    assert len(repo.worktrees()) == 7
    repo.ok("fsck")
    repo.git("fsck", "--no-progress")


def _gated_checkout(repo: GitRepo) -> Path:
    """A file whose checkout waits until the returned path exists (a smudge filter): the
    spawn's checkout runs on, holding the new worktree's index.lock, until a test opens
    the gate."""
    gate = repo.sandbox.root / "checkout-gate"
    repo.git("config", "filter.gated.smudge",
             f"sh -c 'while [ ! -e {gate} ]; do sleep 0.05; done; cat'")
    (repo.path / ".gitattributes").write_text("*.gated filter=gated\n")
    repo.git("add", ".gitattributes")
    repo.commit("a.gated", "a\n")
    return gate


def test_a_spawner_killed_while_git_checks_out_is_recovered_once_the_checkout_ends(
        repo: GitRepo) -> None:
    """spawn checks the files out in a git process of its own while it takes the leases and
    writes the prompt: killed then, it leaves that git writing the worktree. fsck --repair
    waits for it, rather than taking the files it writes for someone's work."""
    gate = _gated_checkout(repo)
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.checkout:kill"})
    assert r.code == 137, r.err
    # The checkout outlives its spawner: it gets to the index (and the gate) on its own,
    # however late a loaded machine starts it.
    wait_for((repo.path / ".git" / "worktrees" / "w1" / "index.lock").exists, timeout=30)
    fsck = subprocess.Popen(["git", "worker", "fsck", "--repair"], cwd=repo.path,
                            env=repo.sandbox.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            fsck.wait(1)  # waiting for the checkout (or, on a slow machine, not there yet)
    finally:
        gate.touch()
    out, err = fsck.communicate(timeout=60)
    assert fsck.returncode == 0, out + err
    assert "dropped the spawning record" in out and "removed worktree" in out, out
    after = repo.snapshot()
    assert {k: after[k] for k in ("refs", "worktrees", "admin", "runtime")} == \
        {k: before[k] for k in ("refs", "worktrees", "admin", "runtime")}
    repo.ok("spawn", "w1", "--no-launch")
    assert (repo.workers_dir / "w1" / "a.gated").read_text() == "a\n"


def test_interrupted_during_the_checkout_stops_it_and_rolls_back(repo: GitRepo) -> None:
    """^C while git checks the files out: that git is ended (it would wait for the gate
    forever), and nothing of the spawn is left."""
    gate = _gated_checkout(repo)
    before = repo.snapshot()
    try:
        r = repo.worker("spawn", "w1", "--no-launch",
                        env={"GIT_WORKER_FAILPOINTS": "spawn.checkout:interrupt"})
    finally:
        gate.touch()  # lets the filter the ended git had started exit
    assert r.code == 130, r.err
    assert repo.snapshot() == before


def test_a_checkout_that_fails_rolls_the_spawn_back(repo: GitRepo) -> None:
    repo.git("config", "filter.broken.smudge", "false")
    repo.git("config", "filter.broken.clean", "cat")
    repo.git("config", "filter.broken.required", "true")
    (repo.path / ".gitattributes").write_text("*.broken filter=broken\n")
    repo.git("add", ".gitattributes")
    repo.commit("a.broken", "a\n")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1, r.err
    assert "smudge filter broken failed" in r.err
    assert repo.snapshot() == before
