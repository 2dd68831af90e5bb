"""git worker fsck: finds drift between registry, branches and worktrees; --repair fixes
what it can without losing anything."""

from __future__ import annotations

import json
import shutil

from conftest import GitRepo


def test_clean_repository(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.ok("fsck").out == "ok: registry, branches and worktrees agree\n"
    assert json.loads(repo.ok("fsck", "--json").out) == []


def test_missing_worktree_is_recreated_from_its_branch(repo: GitRepo) -> None:
    repo.work("w1", "f", "f")
    wt = repo.workers_dir / "w1"
    shutil.rmtree(wt)
    r = repo.worker("fsck")
    assert r.code == 1
    assert f"problem: w1: worktree {wt} is missing (--repair would: recreate it" in r.out
    repo.ok("fsck", "--repair")
    assert (wt / "f").read_text() == "f"
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=wt) == "worker/w1"
    repo.ok("fsck")


def test_record_without_branch_or_worktree_is_dropped(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    repo.git("worktree", "remove", str(repo.workers_dir / "w1"))
    repo.git("branch", "-D", "worker/w1")
    repo.ok("fsck", "--repair")
    assert repo.refs("refs/workers/") == {}
    repo.ok("fsck")


def test_orphans_are_reported_not_deleted(repo: GitRepo) -> None:
    repo.git("branch", "worker/stray")
    (repo.workers_dir / "someone").mkdir(parents=True)
    r = repo.worker("fsck", "--repair")
    assert r.code == 1
    assert "branch worker/stray has no worker record" in r.out
    assert "belongs to no worker" in r.out
    assert "refs/heads/worker/stray" in repo.refs()
    assert (repo.workers_dir / "someone").is_dir()


def test_prunable_worktree_administration_is_pruned(repo: GitRepo) -> None:
    repo.git("worktree", "add", "-q", "--detach", str(repo.path.parent / "tmpwt"))
    shutil.rmtree(repo.path.parent / "tmpwt")
    assert "prunable" in repo.worker("fsck").out
    repo.ok("fsck", "--repair")
    repo.ok("fsck")


def test_corrupt_record_is_restored_from_history(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    tip = repo.git("rev-parse", "refs/workers/w1")
    blob = repo.sandbox.run("git", "hash-object", "-w", "--stdin", cwd=repo.path,
                            input="{broken").out.strip()
    tree = repo.sandbox.run("git", "mktree", cwd=repo.path,
                            input=f"100644 blob {blob}\tworker.json\n").out.strip()
    repo.git("update-ref", "refs/workers/w1", repo.git("commit-tree", tree, "-p", tip, "-m", "x"))
    assert json.loads(repo.ok("list", "--json").out)[0]["state"] == "corrupt"
    repo.ok("fsck", "--repair")
    assert repo.record("w1")["state"] == "ready"
    assert repo.git("log", "-1", "--format=%s", "refs/workers/w1") == \
        "fsck: restored last readable state"


def test_repair_keeps_runtime_files_whose_branch_or_worktree_remains(repo: GitRepo) -> None:
    repo.ok("spawn", "branch-left", "worktree-left", "nothing-left", "--no-launch")
    runtime = repo.path / ".git" / "workers"
    for w in ("branch-left", "worktree-left", "nothing-left"):
        (runtime / w).mkdir(exist_ok=True)
        (runtime / w / "agent.log").write_text(f"what {w}'s agent did\n")
        repo.git("update-ref", "-d", f"refs/workers/{w}")  # the record is lost
    repo.git("checkout", "-q", "--detach", cwd=repo.workers_dir / "worktree-left")
    repo.git("branch", "-q", "-D", "worker/worktree-left")
    repo.git("worktree", "remove", str(repo.workers_dir / "nothing-left"))
    repo.git("branch", "-q", "-D", "worker/nothing-left")
    r = repo.worker("fsck", "--repair")
    assert r.code == 1
    assert (f"problem: branch-left: runtime files {runtime / 'branch-left'} belong to no worker "
            "record, but its branch worker/branch-left still exists: kept (needs you: they are "
            "that branch's agent log and prompt;") in r.out
    assert (f"runtime files {runtime / 'worktree-left'} belong to no worker record, but its "
            f"worktree {repo.workers_dir / 'worktree-left'} still exists: kept") in r.out
    assert (runtime / "branch-left" / "agent.log").read_text() == "what branch-left's agent did\n"
    assert (runtime / "worktree-left" / "agent.log").exists()
    assert f"repaired: nothing-left: runtime files {runtime / 'nothing-left'}" in r.out
    assert not (runtime / "nothing-left").exists()


def _git_processes(repo: GitRepo, *argv: str) -> list[str]:
    """The git commands `git worker ARGV` runs (GIT_TRACE), without the `git worker` itself."""
    trace = repo.sandbox.root / "git-trace"
    trace.unlink(missing_ok=True)
    repo.ok(*argv, env={"GIT_TRACE": str(trace)})
    commands = [line.split("built-in: ", 1)[1].split(" '")[0]
                for line in trace.read_text().splitlines() if "built-in: git " in line]
    return sorted(commands)


def test_fsck_reads_the_repository_once_however_many_workers(repo: GitRepo) -> None:
    """Linear, not quadratic: fsck once read every ref and counted commits per worker
    (54x `git worktree list` at 1,000 workers). Its git processes are now the same for
    two workers as for six — with the refs packed, as a big registry's soon are, and the
    base moved on since the spawns."""
    repo.ok("spawn", "--no-launch", "w1", "w2")
    repo.commit("f", "f")
    repo.git("pack-refs", "--all")
    few = _git_processes(repo, "fsck")
    repo.ok("spawn", "--no-launch", "w3", "w4", "w5", "w6")
    repo.git("pack-refs", "--all")
    assert _git_processes(repo, "fsck") == few
