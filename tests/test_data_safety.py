"""Nothing deletes work without --force: stop, fsck --repair and rm --keep-branch, each
given a worktree and branch full of work (commits, staged, modified and untracked files).

(rm's refusals — dirty, untracked, unmerged, running — are in test_rm.py; a failed merge
leaving target and worktrees untouched in test_merge.py and test_faults.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

from conftest import GitRepo, release


def make_work(repo: GitRepo, wid: str) -> dict[str, object]:
    """Two commits, a staged, a modified and an untracked file in ``wid``'s worktree."""
    wt = repo.workers_dir / wid
    for n in (1, 2):
        (wt / f"c{n}.txt").write_text(f"commit {n}\n")
        repo.git("add", f"c{n}.txt", cwd=wt)
        repo.git("commit", "-q", "-m", f"work {n}", cwd=wt)
    (wt / "staged.txt").write_text("staged\n")
    repo.git("add", "staged.txt", cwd=wt)
    (wt / "README").write_text("modified\n")
    (wt / "untracked.txt").write_text("untracked\n")
    return state_of(repo, wid)


def state_of(repo: GitRepo, wid: str) -> dict[str, object]:
    wt = repo.workers_dir / wid
    files = {p.name: p.read_text() for p in wt.iterdir() if p.is_file() and p.name != ".git"}
    return {"tip": repo.git("rev-parse", f"worker/{wid}"),
            "log": repo.git("log", "--format=%H %s", f"worker/{wid}"),
            "status": repo.git("status", "--porcelain", cwd=wt), "files": files}


def test_stop_never_touches_the_worktree_or_branch(repo: GitRepo, held: Path) -> None:
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    before = make_work(repo, "w1")
    assert repo.ok("stop", "w1").out.startswith("w1: stopped")
    assert state_of(repo, "w1") == before
    assert repo.record("w1")["state"] == "stopped"
    repo.ok("stop", "w1")  # stopping again: nothing to stop, nothing touched
    assert state_of(repo, "w1") == before
    release(repo, "w1")


def test_looking_at_a_worker_never_takes_its_index_lock(repo: GitRepo) -> None:
    """`show` (and every read-only look git-worker takes in a worktree) runs git with
    optional locks off: a `git status` that refreshed the index would hold index.lock for
    a moment, and an agent's own `git add` or `git commit` then would fail ("index.lock:
    File exists") — seen with `show` polled while an agent committed."""
    repo.ok("spawn", "w1", "--no-launch")
    worktree = repo.workers_dir / "w1"
    index = repo.path / ".git" / "worktrees" / "w1" / "index"
    tracked = worktree / "README"
    stat = tracked.stat()
    os.utime(tracked, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # refresh material
    before = index.stat()
    assert repo.show("w1")["state"] == "ready"
    assert repo.ok("show", "w1").code == 0 and repo.ok("list").code == 0
    after = index.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    repo.git("status", "--porcelain", cwd=worktree)  # plain git does rewrite it
    assert index.stat().st_mtime_ns != before.st_mtime_ns


def test_repair_of_an_interrupted_spawn_keeps_work_done_in_its_worktree(repo: GitRepo) -> None:
    # The spawner died before any agent started; then someone worked in the worktree.
    r = repo.worker("spawn", "w1", "--no-launch",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.files:kill"})
    assert r.code == 137
    before = make_work(repo, "w1")
    fsck = repo.worker("fsck", "--repair")
    assert "kept its work (state failed)" in fsck.out, fsck.out
    assert state_of(repo, "w1") == before
    assert repo.record("w1")["state"] == "failed"
    repo.ok("fsck")


def test_repair_of_an_interrupted_spawn_keeps_a_dirty_worktree(repo: GitRepo) -> None:
    r = repo.worker("spawn", "w1", "--no-launch",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.setup:kill"})
    assert r.code == 137
    (repo.workers_dir / "w1" / "notes.txt").write_text("only here\n")
    repo.ok("fsck", "--repair")
    assert (repo.workers_dir / "w1" / "notes.txt").read_text() == "only here\n"


def test_repair_never_deletes_orphaned_work(repo: GitRepo) -> None:
    """The record is gone (deleted with plain git): branch and worktree are orphans."""
    repo.ok("spawn", "w1", "--no-launch")
    before = make_work(repo, "w1")
    repo.git("update-ref", "-d", "refs/workers/w1")
    r = repo.worker("fsck", "--repair")
    assert r.code == 1
    assert "branch worker/w1 has no worker record (needs you:" in r.out
    assert "belongs to no worker (needs you: move or delete the directory)" in r.out
    assert state_of(repo, "w1") == before


def test_repair_never_deletes_a_branch_whose_worktree_went_missing(repo: GitRepo) -> None:
    import shutil

    repo.ok("spawn", "w1", "--no-launch")
    tip = make_work(repo, "w1")["tip"]
    shutil.rmtree(repo.workers_dir / "w1")
    repo.ok("fsck", "--repair")  # recreates the worktree from the branch
    assert repo.git("rev-parse", "worker/w1") == tip
    assert (repo.workers_dir / "w1" / "c2.txt").read_text() == "commit 2\n"


def test_repair_with_the_branch_gone_keeps_the_dirty_worktree(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    make_work(repo, "w1")
    wt = repo.workers_dir / "w1"
    repo.git("update-ref", "-d", "refs/heads/worker/w1")
    r = repo.worker("fsck", "--repair")
    assert r.code == 1 and "branch worker/w1 is missing (its worktree remains)" in r.out
    assert (wt / "untracked.txt").read_text() == "untracked\n"
    assert repo.record("w1")["id"] == "w1"


def test_rm_keep_branch_keeps_every_commit(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    wt = repo.workers_dir / "w1"
    for n in range(5):
        (wt / f"f{n}").write_text(f"{n}\n")
        repo.git("add", f"f{n}", cwd=wt)
        repo.git("commit", "-q", "-m", f"step {n}", cwd=wt)
    log = repo.git("log", "--format=%H %T %s", "worker/w1")
    assert repo.ok("rm", "w1", "--keep-branch").out == "removed w1 (branch kept)\n"
    assert repo.git("log", "--format=%H %T %s", "worker/w1") == log
    assert repo.refs("refs/workers/") == {} and not wt.exists()
    repo.git("fsck", "--no-progress", "--strict")
    repo.ok("spawn", "w2", "--no-launch")  # the kept branch is no one's: a new id is fine
    repo.ok("fsck")
