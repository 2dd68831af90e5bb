"""Races between git-worker processes: whatever interleaving happens, the registry, the
branches and the worktrees agree afterwards (fsck is clean) and nothing is half-done."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox, release, wait_for


def _start(sandbox: Sandbox, repo: GitRepo, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["git", "worker", *args], cwd=repo.path, env=sandbox.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.race
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


@pytest.mark.race
def test_two_rms_of_one_worker(sandbox: Sandbox, repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    procs = [_start(sandbox, repo, "rm", "w1") for _ in range(3)]
    codes = sorted(p.wait(60) for p in procs)
    assert codes[0] == 0, [p.stderr.read() for p in procs]
    assert repo.refs("refs/workers/") == {}
    assert "refs/heads/worker/w1" not in repo.refs()
    repo.ok("fsck")


@pytest.mark.race
def test_stop_racing_the_agents_own_exit(sandbox: Sandbox, repo: GitRepo, held) -> None:
    """Each agent finishes by itself a little before, during or after its stop: every one
    ends stopped or exited with its exit code recorded, and nothing else is touched."""
    repo.git("config", "worker.launcher", "detached")
    ids = [f"s{n}" for n in range(4)]
    repo.ok("spawn", *ids)
    for wid in ids:
        repo.wait(wid, "running")
    stops = [_start(sandbox, repo, "stop", wid) for wid in ids]
    for n, wid in enumerate(ids):  # 0, 0.1, 0.2, 0.3 s into the stops
        time.sleep(0.1 if n else 0)
        release(repo, wid)
    for p in stops:
        assert p.wait(60) == 0, p.stderr.read()
    for wid in ids:
        wait_for(lambda w=wid: repo.record(w)["exit_code"] is not None)
        assert repo.record(wid)["state"] in ("stopped", "exited"), repo.record(wid)
        assert repo.show(wid)["problems"] == []
        assert repo.git("status", "--porcelain", cwd=repo.workers_dir / wid) == ""
    repo.ok("fsck")


@pytest.mark.race
def test_review_racing_merge(sandbox: Sandbox, repo: GitRepo) -> None:
    """A review still running while the worker is merged: both succeed, the merge stands
    (state merged) and the review's verdict is recorded next to it."""
    sandbox.script("review-gate", "sleep 0.5\nexit 0\n")
    ids = ["v1", "v2", "v3"]
    repo.ok("spawn", *ids, "--no-launch")
    for wid in ids:
        wt = repo.workers_dir / wid
        (wt / f"{wid}.txt").write_text(wid)
        repo.git("add", f"{wid}.txt", cwd=wt)
        repo.git("commit", "-q", "-m", wid, cwd=wt)
    procs = []
    for wid in ids:
        procs.append(_start(sandbox, repo, "review", wid))
        procs.append(_start(sandbox, repo, "merge", wid))
    for p in procs:
        assert p.wait(60) == 0, (p.args, p.stderr.read())
    for wid in ids:
        record = repo.record(wid)
        assert record["state"] == "merged" and record["review"]["status"] == "passed", record
        repo.git("merge-base", "--is-ancestor", f"worker/{wid}", "main")
    assert repo.git("status", "--porcelain") == ""
    repo.ok("fsck")


@pytest.mark.race
def test_spawn_rm_and_updates_racing_git_pack_refs(sandbox: Sandbox, repo: GitRepo) -> None:
    """git pack-refs --all moves refs into packed-refs (and gc runs it) while git-worker
    creates, updates and deletes them: no CAS is confused, no update lost, list is right."""
    repo.ok("spawn", "counter", "--no-launch")
    packer = subprocess.Popen(
        ["sh", "-c", "while [ ! -e stop-packing ]; do git pack-refs --all; done"],
        cwd=repo.path, env=sandbox.env)
    try:
        bump = (
            "import sys; sys.path.insert(0, sys.argv[1])\n"
            "from git_worker.repo import Repo\nfrom git_worker.registry import store\n"
            "repo = Repo.discover(sys.argv[2])\n"
            "for i in range(10):\n"
            "    store.update(repo, 'counter', "
            "lambda r: r.task.update(n=r.task.get('n', 0) + 1), f'bump {i}')\n")
        bumpers = [subprocess.Popen([sys.executable, "-c", bump, str(CHECKOUT / "lib"),
                                     str(repo.path)], env=sandbox.env) for _ in range(2)]
        # Many create → update → delete cycles, each checked at once.
        churn = (
            "import sys; sys.path.insert(0, sys.argv[1])\n"
            "from git_worker.repo import Repo\n"
            "repo = Repo.discover(sys.argv[2])\n"
            "a = repo.read_ref('refs/heads/main')\n"
            "b = repo.read_ref('refs/workers/counter')\n"
            "for i in range(60):\n"
            "    ref = f'refs/heads/churn/{i % 3}'\n"
            "    assert repo.create_ref(ref, a, 'c'), (i, 'create')\n"
            "    assert repo.update_ref(ref, a, b, 'u'), (i, 'update', repo.read_ref(ref),\n"
            "                                              repo.ref_table(ref))\n"
            "    assert repo.delete_ref(ref, b, 'd'), (i, 'delete', repo.read_ref(ref))\n"
            "    assert repo.read_ref(ref) is None, (i, 'still there', repo.read_ref(ref))\n")
        churner = subprocess.Popen([sys.executable, "-c", churn, str(CHECKOUT / "lib"),
                                    str(repo.path)], env=sandbox.env, stderr=subprocess.PIPE,
                                   text=True)
        ids = [f"p{n}" for n in range(6)]
        spawns = [_start(sandbox, repo, "spawn", wid, "--no-launch") for wid in ids]
        assert [p.wait(60) for p in spawns] == [0] * 6, [p.stderr.read() for p in spawns]
        rms = [_start(sandbox, repo, "rm", wid) for wid in ids[:3]]
        assert [p.wait(60) for p in rms] == [0] * 3, [p.stderr.read() for p in rms]
        assert [p.wait(60) for p in bumpers] == [0, 0]
        assert churner.wait(60) == 0, churner.stderr.read()
    finally:
        (repo.path / "stop-packing").touch()
        packer.wait(60)
    assert repo.record("counter")["task"]["n"] == 20
    listed = json.loads(repo.ok("list", "--json").out)
    assert sorted(r["id"] for r in listed) == ["counter", *ids[3:]]
    assert all(r["problems"] == [] for r in listed), listed
    assert not any(f"worker/{w}" in repo.git("branch", "--list") for w in ids[:3])
    (repo.path / "stop-packing").unlink()
    repo.ok("fsck")
    repo.git("fsck", "--no-progress")


def _set_owner(repo: GitRepo, worker_id: str, owner: dict[str, object]) -> None:
    """Rewrite the record with plain git, as if ``owner`` were changing the worker."""
    import json
    import socket

    record = repo.record(worker_id) | {"owner": {"host": socket.gethostname(), **owner}}
    blob = repo.sandbox.run("git", "hash-object", "-w", "--stdin", cwd=repo.path,
                            input=json.dumps(record, indent=2)).out.strip()
    tree = repo.sandbox.run("git", "mktree", cwd=repo.path,
                            input=f"100644 blob {blob}\tworker.json\n").out.strip()
    tip = repo.git("rev-parse", f"refs/workers/{worker_id}")
    repo.git("update-ref", f"refs/workers/{worker_id}",
             repo.git("commit-tree", tree, "-p", tip, "-m", "test: owned"), tip)


def test_rm_never_takes_over_a_live_owner_even_with_force(repo: GitRepo) -> None:
    import os

    repo.ok("spawn", "w1", "--no-launch")
    _set_owner(repo, "w1", {"action": "spawn", "pid": os.getpid(), "start": None})
    r = repo.worker("rm", "--force", "w1")
    assert r.code == 1 and f"'w1' is busy: a spawn is in progress (pid {os.getpid()})" in r.err
    assert "refs/workers/w1" in repo.refs()
    dead = subprocess.Popen(["true"])
    dead.wait()
    _set_owner(repo, "w1", {"action": "rm", "pid": dead.pid, "start": None})
    repo.ok("rm", "w1")  # a dead owner's rm is finished by the next one
    assert repo.refs("refs/workers/") == {}


def test_a_spawn_judged_abandoned_that_finished_meanwhile_is_left_alone(repo: GitRepo) -> None:
    """The next spawn of an id (or fsck --repair) reads a record `spawning` whose spawner
    is gone, and rolls it back — but the spawner may have finished between that read and
    the rollback (record `ready`, then exited). The rollback takes the record over from
    exactly the version it read (compare-and-swap) before it touches anything: a worker
    that finished keeps its worktree, branch and record."""
    from git_worker import recovery
    from git_worker.registry import store
    from git_worker.repo import Repo

    repo.ok("spawn", "--no-launch", "w1")
    claimed = repo.git("rev-parse", "refs/workers/w1@{1}")  # as the other spawn read it
    stale = store.parse("w1", claimed, repo.git("cat-file", "blob",
                                                f"{claimed}:worker.json").encode())
    assert isinstance(stale, store.Entry) and stale.record.state == "spawning"
    assert recovery.is_abandoned(stale.record)  # its spawner has exited since
    before = repo.refs("refs/")
    assert recovery.abandon_spawn(Repo.discover(str(repo.path)), stale) == []
    assert repo.refs("refs/") == before
    assert repo.worktrees().count(str(repo.workers_dir / "w1")) == 1
    assert repo.record("w1")["state"] == "ready"
