"""worker.copy: never writes outside the worktree, undone by a rollback, and its files are
not the worker's work (git ignores them in that worktree only; rm does not count them
unless they changed)."""

from __future__ import annotations

import os
import stat

from conftest import GitRepo, Sandbox


def _branch_with_symlink(repo: GitRepo, name: str, target: str) -> None:
    """Branch ``name``: main plus a tracked symlink cfg -> ``target``."""
    repo.git("switch", "-q", "-c", name)
    os.symlink(target, repo.path / "cfg")
    repo.git("add", "cfg")
    repo.git("commit", "-q", "-m", "cfg is a link")
    repo.git("switch", "-q", "main")


def test_a_tracked_symlink_never_leads_the_copy_out(repo: GitRepo) -> None:
    _branch_with_symlink(repo, "evil", "../../elsewhere")
    outside = repo.path.parent / "elsewhere"  # where cfg leads from the worker's worktree
    outside.mkdir()
    (repo.path / "cfg").mkdir()  # in the main worktree, a real directory (untracked)
    (repo.path / "cfg" / "local.toml").write_text("secret = 1\n")
    repo.git("config", "worker.copy", "cfg/*.toml")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch", "-f", "evil")
    assert r.code == 1, r.err
    assert "cfg is a symlink in the new worktree (to ../../elsewhere)" in r.err
    assert "nothing is written outside the worktree" in r.err
    assert list(outside.iterdir()) == []
    assert repo.snapshot() == before


def test_a_dangling_symlink_in_the_way_is_a_clear_error(repo: GitRepo) -> None:
    _branch_with_symlink(repo, "dangling", "nowhere")
    (repo.path / "cfg").mkdir()
    (repo.path / "cfg" / "local.toml").write_text("x = 1\n")
    repo.git("config", "worker.copy", "cfg/*.toml")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch", "-f", "dangling")
    assert r.code == 1, r.err  # was 3: FileExistsError from makedirs
    assert "cfg is a symlink in the new worktree (to nowhere)" in r.err
    assert "hint: fix or remove the pattern" in r.err
    assert repo.snapshot() == before


def test_a_dangling_symlink_matched_is_copied_as_a_link(repo: GitRepo) -> None:
    os.symlink("missing.env", repo.path / ".env")
    repo.git("config", "worker.copy", ".env")
    repo.ok("spawn", "w1", "--no-launch")
    copy = repo.workers_dir / "w1" / ".env"
    assert copy.is_symlink() and os.readlink(copy) == "missing.env"


def test_a_match_reached_through_a_symlinked_directory_is_refused(repo: GitRepo) -> None:
    outside = repo.path.parent / "outside"
    outside.mkdir()
    (outside / "local.toml").write_text("not ours\n")
    os.symlink("../outside", repo.path / "cfg")  # untracked, in the main worktree
    repo.git("config", "worker.copy", "cfg/*.toml")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1, r.err
    assert "reached through the symlink cfg; not copied" in r.err
    assert repo.snapshot() == before


def test_rollback_takes_back_the_copies_and_the_worktree_config(repo: GitRepo) -> None:
    (repo.path / ".env").write_text("SECRET=1\n")
    repo.git("config", "worker.copy", ".env")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.files:error"})
    assert r.code == 1
    assert "rollback was incomplete" not in r.err
    assert repo.snapshot() == before  # the common config too: extensions.worktreeConfig
    assert not (repo.workers_dir / "w1").exists()


def test_copies_are_not_committed_by_the_agents_add_all(sandbox: Sandbox, repo: GitRepo) -> None:
    (repo.path / ".env").write_text("SECRET=1\n")
    (repo.path / "conf").mkdir()
    (repo.path / "conf" / "local.toml").write_text("x = 1\n")
    repo.git("config", "--add", "worker.copy", ".env")
    repo.git("config", "--add", "worker.copy", "conf")
    agent = sandbox.script("add-all-agent", """
        echo work > work.txt
        git add -A && git commit -q -m "everything"
    """)
    repo.git("config", "worker.agent", "add-all")
    repo.git("config", "worker.agent.add-all.command", str(agent))
    repo.ok("spawn", "w1")
    repo.wait("w1", "exited")
    wt = repo.workers_dir / "w1"
    committed = repo.git("show", "--name-only", "--format=", "worker/w1").split()
    assert committed == ["work.txt"]
    assert (wt / ".env").read_text() == "SECRET=1\n"
    assert repo.git("status", "--porcelain", cwd=wt) == ""
    # ...and only there: the main worktree still shows its own untracked files.
    assert "?? .env" in repo.git("status", "--porcelain").splitlines()


def test_the_users_own_excludes_still_apply_in_the_worktree(sandbox: Sandbox,
                                                             repo: GitRepo) -> None:
    ignore = sandbox.home / ".config" / "git" / "ignore"
    ignore.parent.mkdir(parents=True)
    ignore.write_text("*.swp\n")
    (repo.path / ".env").write_text("SECRET=1\n")
    repo.git("config", "worker.copy", ".env")
    repo.ok("spawn", "w1", "--no-launch")
    wt = repo.workers_dir / "w1"
    (wt / "notes.swp").write_text("editor\n")
    assert repo.git("status", "--porcelain", cwd=wt) == ""


def test_rm_does_not_count_an_unchanged_copy_as_work(repo: GitRepo) -> None:
    (repo.path / ".env").write_text("SECRET=1\n")
    repo.git("config", "worker.copy", ".env")
    repo.ok("spawn", "w1", "--no-launch")
    repo.ok("rm", "w1")
    assert not (repo.workers_dir / "w1").exists()
    assert (repo.path / ".env").read_text() == "SECRET=1\n"


def test_rm_keeps_a_copy_changed_since_the_spawn(repo: GitRepo) -> None:
    (repo.path / ".env").write_text("SECRET=1\n")
    repo.git("config", "worker.copy", ".env")
    repo.ok("spawn", "w1", "--no-launch")
    (repo.workers_dir / "w1" / ".env").write_text("SECRET=2\n")
    r = repo.worker("rm", "w1")
    assert r.code == 1
    assert "1 modified or untracked file(s) in its worktree (.env)" in r.err
    assert (repo.workers_dir / "w1" / ".env").read_text() == "SECRET=2\n"
    repo.ok("rm", "w1", "--force")
    assert not (repo.workers_dir / "w1").exists()


def test_copies_keep_their_mode(repo: GitRepo) -> None:
    (repo.path / "run.sh").write_text("#!/bin/sh\n")
    (repo.path / "run.sh").chmod(0o750)
    repo.git("config", "worker.copy", "run.sh")
    repo.ok("spawn", "w1", "--no-launch")
    assert stat.S_IMODE((repo.workers_dir / "w1" / "run.sh").stat().st_mode) == 0o750




def test_rm_of_unchanged_copies_git_does_not_ignore(repo: GitRepo) -> None:
    """Where the exclusion is not in place (say, the repository's config sets core.worktree,
    or the worktree's config.worktree is gone), git shows the copies as untracked; rm
    still knows them for what they are."""
    (repo.path / ".env").write_text("SECRET=1\n")
    repo.git("config", "worker.copy", ".env")
    repo.ok("spawn", "w1", "--no-launch")
    wt = repo.workers_dir / "w1"
    (repo.path / ".git" / "worktrees" / "w1" / "config.worktree").unlink()
    assert repo.git("status", "--porcelain", cwd=wt) == "?? .env"
    repo.ok("rm", "w1")
    assert not wt.exists()
