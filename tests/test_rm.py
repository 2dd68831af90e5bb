"""git worker rm: removes worktree, branch and record — and refuses to lose work."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import GitRepo, Result


def test_rm_removes_everything_of_a_finished_worker(repo: GitRepo) -> None:
    before = repo.snapshot()
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.ok("rm", "w1").out == "removed w1\n"
    after = repo.snapshot()
    assert after["refs"] == before["refs"]
    assert after["worktrees"] == before["worktrees"]
    assert after["admin"] == [] and after["runtime"] == []


def test_rm_refuses_uncommitted_and_untracked_changes(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "w2", "--no-launch")
    (repo.workers_dir / "w1" / "README").write_text("changed\n")
    (repo.workers_dir / "w2" / "new.txt").write_text("new\n")
    r = repo.worker("rm", "w1", "w2")
    assert r.code == 1
    assert "refusing to remove 'w1': 1 modified or untracked file(s) in its worktree (README)" \
        in r.err
    assert "(new.txt)" in r.err and "--force" in r.err
    assert (repo.workers_dir / "w1" / "README").read_text() == "changed\n"
    assert (repo.workers_dir / "w2" / "new.txt").exists()
    assert set(repo.refs("refs/workers/")) == {"refs/workers/w1", "refs/workers/w2"}


def test_rm_refuses_unmerged_commits_but_keep_branch_saves_them(repo: GitRepo) -> None:
    tip = repo.work("w1", "feature.txt")
    wt = repo.workers_dir / "w1"
    r = repo.worker("rm", "w1")
    assert r.code == 1
    assert "branch worker/w1 has 1 commit(s) not in main" in r.err
    assert "--keep-branch" in r.err
    assert repo.ok("rm", "w1", "--keep-branch").out == "removed w1 (branch kept)\n"
    assert repo.git("rev-parse", "worker/w1") == tip
    assert str(wt) not in repo.worktrees() and not wt.exists()


def test_merged_commits_do_not_block_rm(repo: GitRepo) -> None:
    repo.work("w1", "feature.txt")
    repo.git("merge", "-q", "--ff-only", "worker/w1")
    repo.ok("rm", "w1")
    assert "refs/heads/worker/w1" not in repo.refs()


def test_force_discards(repo: GitRepo) -> None:
    repo.work("w1", "x")
    wt = repo.workers_dir / "w1"
    (wt / "README").write_text("changed\n")
    (wt / "y").write_text("y")
    repo.ok("rm", "--force", "w1")
    assert not wt.exists() and "refs/heads/worker/w1" not in repo.refs()
    assert repo.refs("refs/workers/") == {}


def test_rm_refuses_a_running_agent(repo: GitRepo, sandbox) -> None:
    sleeper = sandbox.script("sleeper", "exec sleep 60\n")
    repo.git("config", "worker.agent.sleeper.command", str(sleeper))
    repo.ok("spawn", "w1", "-a", "sleeper")
    r = repo.worker("rm", "w1")
    assert r.code == 1 and "its agent is still running" in r.err
    repo.ok("rm", "-f", "w1")
    assert repo.refs("refs/workers/") == {}


def test_rm_of_a_worker_whose_worktree_was_deleted_by_hand(repo: GitRepo) -> None:
    import shutil

    repo.ok("spawn", "w1", "--no-launch")
    shutil.rmtree(repo.workers_dir / "w1")
    repo.ok("remove", "w1")
    assert repo.worktrees() == [str(repo.path)]
    repo.git("worktree", "prune", "--dry-run")
    assert repo.refs("refs/workers/") == {}


def test_rm_unknown_worker(repo: GitRepo) -> None:
    r = repo.worker("rm", "nope")
    assert r.code == 1
    assert "error: nope: no worker 'nope'" in r.err

# Every rm step faulted (error/kill/crash): test_faults.py.


def test_rm_of_the_worktree_the_caller_stands_in_says_where_to_go(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "w2", "--no-launch")
    inside = repo.workers_dir / "w1" / "sub" / "dir"
    inside.mkdir(parents=True)
    r = repo.worker("rm", "w1", cwd=inside)
    assert r.code == 0, r.err
    assert r.out == ("removed w1\n"
                     f"your shell was in its worktree, which is gone: cd {repo.path}\n")
    assert not (repo.workers_dir / "w1").exists()
    assert repo.worktrees() == [str(repo.path), str(repo.workers_dir / "w2")]
    assert set(repo.refs("refs/workers/")) == {"refs/workers/w2"}
    assert repo.worker("rm", "w2").out == "removed w2\n"  # elsewhere: no such line


def test_rm_of_a_clean_worker_reads_the_registry_once(repo: GitRepo) -> None:
    """rm read the registry three times (the record, then again, then every record to see
    whether another names the same branch or worktree) and every record once more for
    the queue: now once, and the queue only when the worker held a slot in it."""
    repo.ok("spawn", "--no-launch", "w1", "w2")
    trace = repo.sandbox.root / "git-trace"
    repo.ok("rm", "w1", env={"GIT_TRACE": str(trace)})
    commands = [line.split("built-in: ", 1)[1].split(" ")[1]
                for line in trace.read_text().splitlines() if "built-in: git " in line]
    assert commands.count("for-each-ref") == 1, commands
    # and the records from their loose objects, not by a cat-file (see the next tests)
    assert commands.count("cat-file") == 0, commands
    assert repo.refs("refs/workers/").keys() == {"refs/workers/w2"}


def _record_of(repo: GitRepo, worker_id: str) -> dict[str, Any]:
    return json.loads(repo.git("cat-file", "-p", f"refs/workers/{worker_id}:worker.json"))


def test_rm_refuses_untracked_files_whatever_status_show_untracked_files_says(
        repo: GitRepo) -> None:
    """git checks the worktree as it removes it (one status of the tree, not two): with
    the user's status.showUntrackedFiles=no its status would hide new files."""
    repo.ok("spawn", "w1", "--no-launch")
    repo.git("config", "status.showUntrackedFiles", "no")
    (repo.workers_dir / "w1" / "notes.txt").write_text("mine\n")
    record = repo.refs("refs/workers/")
    r = repo.worker("rm", "w1")
    assert r.code == 1
    assert "refusing to remove 'w1': 1 modified or untracked file(s) in its worktree " \
           "(notes.txt)" in r.err, r.err
    assert (repo.workers_dir / "w1" / "notes.txt").read_text() == "mine\n"
    assert repo.refs("refs/workers/") == record  # as it was: not left `removing`
    assert "refs/heads/worker/w1" in repo.refs()


def _held_at(repo: GitRepo, step: str, go: Path, *argv: str) -> subprocess.Popen[str]:
    """`git worker ARGV` waiting at failpoint ``step`` until ``go`` exists."""
    return subprocess.Popen(
        ["git", "worker", *argv], cwd=repo.path, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**repo.sandbox.env, "GIT_WORKER_FAILPOINTS": f"{step}:wait",
                                     "GIT_WORKER_FAILPOINTS_AFTER": str(go)})


def test_a_file_written_after_rm_checked_is_not_lost(repo: GitRepo) -> None:
    """rm checks, marks the record `removing`, then removes: a file that appears in
    between (written by a process rm does not know of) makes it refuse, and roll back."""
    repo.ok("spawn", "w1", "--no-launch")
    before = repo.refs()
    go = repo.sandbox.root / "go"
    rm = _held_at(repo, "rm.stop", go, "rm", "w1")
    deadline = time.monotonic() + 60
    while _record_of(repo, "w1")["state"] != "removing":  # rm has checked: it goes on
        assert time.monotonic() < deadline and rm.poll() is None, rm.communicate()
        time.sleep(0.05)
    (repo.workers_dir / "w1" / "late.txt").write_text("written meanwhile\n")
    go.touch()
    out, err = rm.communicate(timeout=60)
    assert rm.returncode == 1, (out, err)
    assert "1 modified or untracked file(s) in its worktree (late.txt)" in err, err
    assert (repo.workers_dir / "w1" / "late.txt").read_text() == "written meanwhile\n"
    assert repo.refs() == before  # the record back where it was, the branch kept
    assert _record_of(repo, "w1")["state"] == "ready"


def _git_commands(repo: GitRepo, *args: str, code: int = 0) -> tuple[Result, list[str]]:
    """``git worker *args``, and the name of each git command it ran."""
    trace = repo.sandbox.root / "git-trace"
    trace.unlink(missing_ok=True)
    r = repo.worker(*args, env={"GIT_TRACE": str(trace)})
    assert r.code == code, (r.out, r.err)
    commands = [line.split("built-in: ", 1)[1].split(" ")[1:]
                for line in trace.read_text().splitlines() if "built-in: git " in line]
    return r, [next(w for w in argv if not w.startswith("-") and "=" not in w)
               for argv in commands]


def test_rm_of_a_clean_worker_runs_six_git_commands_and_one_status(repo: GitRepo) -> None:
    """What rm costs on a big tree is the status of it, and each git process: the tree is
    looked at once (git's own status, as it removes it), the settings read once, the
    record from its loose objects (no cat-file)."""
    repo.ok("spawn", "--no-launch", "w1")
    _, names = _git_commands(repo, "rm", "w1")
    assert names.count("status") == 1, names
    assert names.count("config") == 1, names
    # rev-parse, config, for-each-ref, update-ref (`removing`), worktree remove (and its
    # status), update-ref --stdin (the branch and the record)
    assert len(names) == 7, names


def _cache_saying(repo: GitRepo, **changes: dict[str, Any]) -> None:
    """list's record cache, written as `list` writes it, each record of ``changes`` (by
    worker id) altered there — and only there: git's objects are left as they are."""
    parts = [b"git-worker record cache 1\n"]
    for ref, oid in repo.refs("refs/workers/").items():
        worker_id = ref.removeprefix("refs/workers/")
        data = (json.dumps({**_record_of(repo, worker_id), **changes.get(worker_id, {})},
                           indent=2) + "\n").encode()
        parts += [f"{oid} {len(data)}\n".encode(), data, b"\n"]
    (repo.path / ".git" / "workers" / ".records").write_bytes(b"".join(parts))


def test_rm_reads_the_other_records_from_the_record_cache_and_its_own_from_git(
        repo: GitRepo) -> None:
    """Whether another record names its branch or worktree, rm asks list's record cache
    (a commit never changes: ~5 ms less with 60 workers, 180 loose objects not read); the
    record it changes it reads from git's objects, whatever the cache says of it."""
    repo.ok("spawn", "--no-launch", "w1", "w2", "w3")
    w1 = repo.workers_dir / "w1"
    _cache_saying(repo, w3={"branch": "refs/heads/worker/w2"},  # read: w2's branch stays
                  w2={"branch": "refs/heads/main", "worktree": str(w1)})  # never read
    main = repo.git("rev-parse", "main")
    r = repo.worker("rm", "w2")
    assert r.code == 0 and r.out == "removed w2\n", r
    assert "kept branch worker/w2: worker 'w3' names it too" in r.err, r.err
    assert repo.git("rev-parse", "main") == main  # not the branch the cache gave w2
    assert w1.is_dir() and str(w1) in repo.worktrees()
    assert not (repo.workers_dir / "w2").exists()
    assert set(repo.refs("refs/workers/")) == {"refs/workers/w1", "refs/workers/w3"}


def test_rm_of_the_last_worker_leaves_no_record_cache(repo: GitRepo) -> None:
    repo.ok("spawn", "--no-launch", "w1", "w2")
    repo.ok("list")
    repo.ok("rm", "w1")
    cache = repo.path / ".git" / "workers" / ".records"
    assert b'"id": "w2"' in cache.read_bytes() and b'"id": "w1"' not in cache.read_bytes()
    repo.ok("rm", "w2")
    assert list((repo.path / ".git" / "workers").iterdir()) == []


def test_rm_reads_a_packed_record_through_git(repo: GitRepo) -> None:
    """After `git gc` the record's objects are in a pack, not loose files: rm reads them
    with `git cat-file`, as before, and removes the worker all the same."""
    repo.ok("spawn", "--no-launch", "w1")
    repo.git("gc", "--quiet")
    oid = repo.git("rev-parse", "refs/workers/w1")
    assert not (repo.path / ".git" / "objects" / oid[:2] / oid[2:]).exists()
    r, names = _git_commands(repo, "rm", "w1")
    assert r.out == "removed w1\n"
    assert names.count("cat-file") == 1 and len(names) == 8, names
    assert repo.refs("refs/workers/") == {}
    assert not (repo.workers_dir / "w1").exists()


def test_rm_does_not_trust_a_damaged_loose_record(repo: GitRepo) -> None:
    """A record object whose file is damaged is not read from the file: git reads it, and
    rm refuses with what git found, removing nothing."""
    repo.ok("spawn", "--no-launch", "w1")
    blob = repo.git("rev-parse", "refs/workers/w1:worker.json")
    path = repo.path / ".git" / "objects" / blob[:2] / blob[2:]
    path.chmod(0o644)
    damaged = bytearray(path.read_bytes())
    damaged[10:20] = b"X" * 10
    path.write_bytes(bytes(damaged))
    before = repo.refs()
    r, names = _git_commands(repo, "rm", "w1", code=1)
    assert "the registry record of 'w1' is unreadable" in r.err, r.err
    assert "git worker fsck" in r.err, r.err
    assert names.count("cat-file") >= 1, names
    assert repo.refs() == before
    assert (repo.workers_dir / "w1").is_dir()


@pytest.mark.parametrize("moved", ["branch", "record"])
def test_branch_and_record_go_together_or_not_at_all(repo: GitRepo, moved: str) -> None:
    """The branch and the record are deleted in one transaction, each only if it is still
    where rm found it: when either moved meanwhile, neither goes, and the worktree comes
    back."""
    repo.ok("spawn", "w1", "--no-launch")
    go = repo.sandbox.root / "go"
    rm = _held_at(repo, "rm.branch", go, "rm", "w1")
    deadline = time.monotonic() + 60
    while (repo.workers_dir / "w1").exists():  # rm waits once the worktree is gone
        assert time.monotonic() < deadline and rm.poll() is None, rm.communicate()
        time.sleep(0.05)
    ref = "refs/heads/worker/w1" if moved == "branch" else "refs/workers/w1"
    old = repo.git("rev-parse", ref)
    new = repo.git("commit-tree", f"{old}^{{tree}}", "-p", old, "-m", "meanwhile")
    repo.git("update-ref", ref, new, old)
    branch = repo.git("rev-parse", "refs/heads/worker/w1")
    go.touch()
    out, err = rm.communicate(timeout=60)
    assert rm.returncode == 1, (out, err)
    said = ("branch worker/w1 moved while removing 'w1'" if moved == "branch"
            else "'w1' changed while being removed")
    assert said in err, err
    refs = repo.refs()
    assert refs["refs/heads/worker/w1"] == branch  # kept, where it is now
    assert "refs/workers/w1" in refs
    assert (repo.workers_dir / "w1" / "README").exists()  # put back


def test_rm_deletes_the_runtime_dir_without_following_a_link_in_it(repo: GitRepo) -> None:
    """The runtime dir (.git/workers/ID) goes with the record, what is in it too — a
    symlink in it is removed, never what it points to; a directory in it goes whole."""
    outside = repo.sandbox.root / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the worker's\n")
    repo.ok("spawn", "w1", "w2", "--no-launch")
    for worker_id in ("w1", "w2"):
        runtime = repo.path / ".git" / "workers" / worker_id
        (runtime / "link-to-dir").symlink_to(outside, target_is_directory=True)
        (runtime / "link-to-file").symlink_to(outside / "keep.txt")
    (repo.path / ".git" / "workers" / "w2" / "sub" / "deeper").mkdir(parents=True)
    (repo.path / ".git" / "workers" / "w2" / "sub" / "deeper" / "f").write_text("x\n")
    assert repo.ok("rm", "w1", "w2").out == "removed w1\nremoved w2\n"
    assert not (repo.path / ".git" / "workers" / "w1").exists()
    assert not (repo.path / ".git" / "workers" / "w2").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "not the worker's\n"
    # the runtime dir itself replaced by a link: what it points to stays whole
    repo.ok("spawn", "w3", "--no-launch")
    runtime = repo.path / ".git" / "workers" / "w3"
    for f in runtime.iterdir():
        f.unlink()
    runtime.rmdir()
    runtime.symlink_to(outside, target_is_directory=True)
    assert repo.ok("rm", "w3").out == "removed w3\n"
    assert (outside / "keep.txt").read_text() == "not the worker's\n"
