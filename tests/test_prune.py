"""prune and rm --merged: workers whose work has landed go (however it landed); work stays."""

from __future__ import annotations

import json
import os

from conftest import GitRepo, Sandbox


def _five(repo: GitRepo, sandbox: Sandbox) -> None:
    """Workers merged by git-worker, by plain git merge, by squash; unmerged; dirty."""
    origin = sandbox.root / "origin.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(origin))
    repo.git("remote", "add", "origin", str(origin))
    repo.git("fetch", "-q", "origin")
    repo.git("branch", "-u", "origin/main", "main")
    repo.work("by-worker", "a.txt")
    repo.work("by-git", "b.txt")
    repo.work("by-squash", "c.txt", "c1\n", "first")
    repo.work("by-squash", "c.txt", "c2\n", "second")
    repo.work("unmerged", "d.txt")
    repo.work("dirty", "e.txt")
    repo.ok("merge", "by-worker")
    repo.git("merge", "-q", "--no-ff", "-m", "plain merge", "worker/by-git")
    repo.git("merge", "-q", "--squash", "worker/by-squash")
    repo.git("commit", "-q", "-m", "squashed by hand")
    repo.git("merge", "-q", "--no-ff", "-m", "merge dirty", "worker/dirty")
    (repo.workers_dir / "dirty" / "notes.txt").write_text("not committed\n")
    (repo.workers_dir / "by-git" / "big.bin").write_bytes(b"")  # tracked below: not dirty
    repo.git("add", "big.bin", cwd=repo.workers_dir / "by-git")
    repo.git("commit", "-q", "-m", "empty file", cwd=repo.workers_dir / "by-git")
    repo.git("merge", "-q", "--no-ff", "-m", "plain merge again", "worker/by-git")


def test_prune_removes_what_landed_however_and_keeps_work(repo: GitRepo, sandbox: Sandbox) -> None:
    _five(repo, sandbox)
    dry = repo.ok("prune", "--dry-run")
    assert "would remove by-worker: merged into main by git-worker" in dry.out
    assert "would remove by-git: merged into main" in dry.out
    assert "would remove by-squash: its change is in main (squash-merged or picked)" in dry.out
    assert "kept unmerged: not merged" in dry.out
    assert "kept dirty: 1 uncommitted file(s) in its worktree" in dry.out
    assert set(repo.refs("refs/workers/")) == {f"refs/workers/{w}" for w in
                                                ("by-worker", "by-git", "by-squash", "unmerged",
                                                 "dirty")}

    r = repo.ok("prune")
    for w in ("by-worker", "by-git", "by-squash"):
        assert f"removed {w}: " in r.out
        assert not (repo.workers_dir / w).exists()
    assert "freed " in r.out and "(3 worker(s))" in r.out
    assert set(repo.refs("refs/workers/")) == {"refs/workers/unmerged", "refs/workers/dirty"}
    assert set(repo.refs("refs/heads/worker/")) == {"refs/heads/worker/unmerged",
                                                    "refs/heads/worker/dirty"}
    assert (repo.workers_dir / "dirty" / "notes.txt").read_text() == "not committed\n"
    assert len(repo.worktrees()) == 3

    again = repo.ok("prune")
    assert "nothing to prune" in again.out


def test_prune_reports_the_disk_space_freed(repo: GitRepo) -> None:
    repo.work("big", "blob.bin", "x" * 300_000)
    repo.ok("merge", "big")
    listed = json.loads(repo.ok("list", "--json", "--all", "--size").out)
    size = next(r["size"] for r in listed if r["id"] == "big")
    assert size >= 300_000
    assert "SIZE" in repo.ok("list", "--all", "--size").out
    r = json.loads(repo.ok("prune", "--json").out)
    assert r == [{"id": "big", "prunable": True, "why": "merged into main by git-worker",
                  "worktree": str(repo.workers_dir / "big"), "size": size, "removed": True,
                  "error": None}]


def test_rm_removes_a_plain_git_or_squash_merged_worker_without_force(repo: GitRepo) -> None:
    repo.work("plain", "a.txt")
    repo.work("squashed", "b.txt")
    repo.work("kept", "c.txt")
    repo.git("merge", "-q", "--no-ff", "-m", "m", "worker/plain")
    repo.git("merge", "-q", "--squash", "worker/squashed")
    repo.git("commit", "-q", "-m", "squashed")
    repo.ok("rm", "plain", "squashed")
    refused = repo.worker("rm", "kept")
    assert refused.code == 1 and "1 commit(s) not in main" in refused.err
    assert "refs/heads/worker/kept" in repo.refs()


def test_a_partly_squashed_branch_is_work(repo: GitRepo) -> None:
    repo.work("half", "a.txt")
    repo.git("merge", "-q", "--squash", "worker/half")
    repo.git("commit", "-q", "-m", "squashed")
    repo.work("half", "b.txt")  # more work after the squash
    assert "kept half: not merged" in repo.ok("prune").out
    assert repo.worker("rm", "half").code == 1
    assert (repo.workers_dir / "half").exists()


def test_rm_merged_removes_only_landed_workers(repo: GitRepo) -> None:
    repo.work("done", "a.txt")
    repo.work("open", "b.txt")
    repo.ok("spawn", "fresh", "--no-launch")  # no commit of its own yet: kept
    repo.git("merge", "-q", "--no-ff", "-m", "m", "worker/done")
    r = repo.ok("rm", "--merged")
    assert "removed done: merged into main" in r.out
    assert "kept open: not merged" in r.out and "kept fresh: no commits yet" in r.out
    assert set(repo.refs("refs/workers/")) == {"refs/workers/open", "refs/workers/fresh"}
    usage = repo.worker("rm", "--merged", "--force")
    assert usage.code == 2
    assert repo.worker("rm").code == 2


def test_older_than(repo: GitRepo) -> None:
    repo.work("w1", "a.txt")
    repo.ok("merge", "w1")
    assert "nothing to prune" in repo.ok("prune", "--older-than", "1h").out
    assert (repo.workers_dir / "w1").exists()
    bad = repo.worker("prune", "--older-than", "soon")
    assert bad.code == 2 and "expected a duration" in bad.err
    repo.ok("prune", "--older-than", "0s")
    assert not (repo.workers_dir / "w1").exists()


def test_running_agent_is_never_pruned(repo: GitRepo, held: object) -> None:
    repo.ok("spawn", "busy")
    wt = repo.workers_dir / "busy"
    (wt / "f.txt").write_text("f\n")
    repo.git("add", "f.txt", cwd=wt)
    repo.git("commit", "-q", "-m", "f", cwd=wt)
    repo.git("merge", "-q", "--no-ff", "-m", "m", "worker/busy")
    assert "kept busy: its agent is still running" in repo.ok("prune").out
    assert os.path.isdir(wt)
    (repo.path / ".git" / "workers" / "busy" / "go").touch()
    repo.wait("busy", "exited")
    assert "removed busy" in repo.ok("prune").out


def test_a_merged_worker_that_went_on_committing_is_kept(repo: GitRepo) -> None:
    repo.work("w1", "a.txt")
    repo.ok("merge", "w1")
    repo.work("w1", "b.txt")  # after the merge: work that is nowhere else
    assert "kept w1: not merged" in repo.ok("prune").out
    refused = repo.worker("rm", "w1")
    assert refused.code == 1 and "1 commit(s) not in main" in refused.err
    assert (repo.workers_dir / "w1" / "b.txt").exists()
