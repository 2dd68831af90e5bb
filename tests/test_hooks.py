"""git worker hooks: install over a user's hook, and what plain git may do to workers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from conftest import GitRepo, Sandbox


def test_install_writes_executable_hook_and_uninstall_removes_it(repo: GitRepo) -> None:
    hook = repo.path / ".git" / "hooks" / "reference-transaction"
    r = repo.ok("hooks", "install")
    assert "installed reference-transaction in" in r.out
    assert hook.stat().st_mode & stat.S_IXUSR
    assert b"# git-worker hook: reference-transaction" in hook.read_bytes()
    assert "updated reference-transaction" in repo.ok("hooks", "install").out
    assert "removed reference-transaction" in repo.ok("hooks", "uninstall").out
    assert not hook.exists()
    assert "is not installed" in repo.ok("hooks", "uninstall").out


def test_existing_user_hook_is_chained_both_run_and_restored_exactly(
        repo: GitRepo, sandbox: Sandbox) -> None:
    hooks = repo.path / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    user_hook = hooks / "reference-transaction"
    log = sandbox.root / "user-hook.log"
    body = f'#!/bin/sh\n# my own hook\necho "$1" >> "{log}"\ncat >> "{log}"\n'.encode()
    user_hook.write_bytes(body)
    user_hook.chmod(0o750)

    r = repo.ok("hooks", "install")
    assert "your existing hook is kept as reference-transaction.pre-git-worker" in r.out
    assert (hooks / "reference-transaction.pre-git-worker").read_bytes() == body

    repo.ok("spawn", "w1", "--no-launch")
    repo.git("branch", "plain")  # the user's hook still sees every transaction
    seen = log.read_text()
    assert "prepared\n" in seen and "committed\n" in seen and "refs/heads/plain" in seen
    # ... and ours still refuses
    r2 = repo.sandbox.run("git", "update-ref", "-d", "refs/workers/w1", cwd=repo.path)
    assert r2.code != 0 and "git worker rm w1" in r2.err

    repo.ok("hooks", "uninstall")
    assert user_hook.read_bytes() == body
    assert stat.S_IMODE(user_hook.stat().st_mode) == 0o750
    assert not (hooks / "reference-transaction.pre-git-worker").exists()


def test_user_hook_refusal_still_counts(repo: GitRepo, sandbox: Sandbox) -> None:
    hooks = repo.path / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "reference-transaction").write_text(
        '#!/bin/sh\ncat >/dev/null\n[ "$1" = prepared ] && echo "user says no" >&2 && exit 1\n'
        "exit 0\n")
    (hooks / "reference-transaction").chmod(0o755)
    repo.ok("hooks", "install")
    r = sandbox.run("git", "branch", "anything", cwd=repo.path)
    assert r.code != 0 and "user says no" in r.err


def test_respects_core_hooks_path(repo: GitRepo) -> None:
    repo.git("config", "core.hooksPath", "my-hooks")
    repo.ok("hooks", "install")
    assert (repo.path / "my-hooks" / "reference-transaction").exists()
    assert not (repo.path / ".git" / "hooks" / "reference-transaction").exists()


def test_shared_hooks_path_is_pointed_out(repo: GitRepo, sandbox: Sandbox) -> None:
    shared = sandbox.home / "githooks"
    repo.git("config", "core.hooksPath", str(shared))
    r = repo.ok("hooks", "install")
    assert (shared / "reference-transaction").exists()
    assert "note: core.hooksPath points outside this repository" in r.err


def test_plain_git_cannot_delete_a_live_workers_refs(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.ok("hooks", "install")
    repo.ok("spawn", "w1", "--no-launch")
    before = repo.refs()

    r = sandbox.run("git", "update-ref", "-d", "refs/heads/worker/w1", cwd=repo.path)
    assert r.code != 0
    assert "refusing to delete (or rename) branch worker/w1: it belongs to worker 'w1'" in r.err
    assert "git worker rm w1" in r.err

    r = sandbox.run("git", "update-ref", "-d", "refs/workers/w1", cwd=repo.path)
    assert r.code != 0 and "registry record of worker 'w1'" in r.err

    # git branch -D needs the branch checked out nowhere: detach the worker's worktree.
    repo.git("checkout", "-q", "--detach", cwd=repo.workers_dir / "w1")
    r = sandbox.run("git", "branch", "-D", "worker/w1", cwd=repo.path)
    assert r.code != 0 and "git worker rm w1" in r.err
    r = sandbox.run("git", "branch", "-m", "worker/w1", "renamed", cwd=repo.path)
    assert r.code != 0 and "git worker rm w1" in r.err
    assert repo.refs() == before


def test_allowed_after_git_worker_rm(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.ok("hooks", "install")
    repo.ok("spawn", "w1", "w2", "--no-launch")
    repo.ok("rm", "w1", "--keep-branch")
    repo.git("branch", "-D", "worker/w1")
    repo.ok("rm", "w2", "--keep-branch")
    repo.git("update-ref", "-d", "refs/heads/worker/w2")
    assert not [r for r in repo.refs() if "w1" in r or "w2" in r]


def test_git_worker_own_updates_pass(repo: GitRepo, agent) -> None:
    repo.ok("hooks", "install")
    repo.ok("spawn", "w1")  # the agent commits on its branch: a fast-forward
    repo.wait("w1", "exited")
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "work on w1"
    repo.ok("merge", "w1")
    repo.ok("rm", "w1")  # deletes branch and registry ref (dulwich: no hook runs)
    assert not [r for r in repo.refs() if "w1" in r]


def test_non_fast_forward_moves(repo: GitRepo, sandbox: Sandbox) -> None:
    repo.ok("hooks", "install")
    repo.ok("spawn", "w1", "--no-launch")
    wt = repo.workers_dir / "w1"
    first = repo.work("w1", "a.txt")
    repo.work("w1", "b.txt")
    # From elsewhere: refused.
    r = sandbox.run("git", "update-ref", "refs/heads/worker/w1", first, cwd=repo.path)
    assert r.code != 0 and "refusing to move branch worker/w1 backwards" in r.err
    # From its own worktree (amend, reset): the agent's business.
    repo.git("reset", "-q", "--hard", first, cwd=wt)
    repo.git("commit", "-q", "--amend", "-m", "amended", cwd=wt)
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "amended"
    # The registry only moves forward.
    record_commit = repo.git("rev-parse", "refs/workers/w1")
    r = sandbox.run("git", "update-ref", "refs/workers/w1", f"{record_commit}~1", cwd=repo.path)
    assert r.code != 0 and "refusing to rewind refs/workers/w1" in r.err


def test_other_refs_and_housekeeping_pass(repo: GitRepo) -> None:
    repo.ok("hooks", "install")
    repo.ok("spawn", "w1", "--no-launch")
    repo.git("branch", "topic")
    repo.git("branch", "-D", "topic")
    repo.git("branch", "old-w1")  # ends like the worker's id, but is not its branch
    repo.git("branch", "-D", "old-w1")
    repo.commit("x.txt", "x\n")
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.git("pack-refs", "--all")  # prunes loose copies: old -> zero, yet no deletion
    repo.git("gc", "-q")
    assert "refs/heads/worker/w1" in repo.refs()
    repo.work("w1", "after-pack.txt")  # a packed worker branch still moves forward


def test_shipped_hook_is_posix_sh(repo: GitRepo) -> None:
    path = Path(__file__).resolve().parent.parent / "hooks" / "reference-transaction"
    assert path.read_text().startswith("#!/bin/sh\n")
    assert os.access(path, os.X_OK)
