"""A lock file a killed git left behind: fsck names it, --repair deletes it when it is
provably stale (no process has it open, older than git's own timeouts), and the id it
blocked can be spawned again. A lock that may be in use is named, never deleted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import GitRepo, Sandbox


def _left_behind(path: Path, age: float = 3600) -> Path:
    """A lock file as a killed git leaves it: the ref's new value, ``age`` seconds old."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("0" * 40 + "\n")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_stale_branch_lock_is_named_repaired_and_the_id_spawns_again(repo: GitRepo) -> None:
    lock = _left_behind(repo.path / ".git" / "refs" / "heads" / "worker" / "w1.lock")
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1
    assert f"its lock file {lock} is held by another process, or was left behind" in r.err
    assert "git worker fsck --repair deletes it once it is a minute old" in r.err
    fsck = repo.worker("fsck")
    assert fsck.code == 1
    assert f"problem: w1: stale lock {lock} (1h old, no process has it open) " \
           "(--repair would: delete it)" in fsck.out
    repaired = repo.worker("fsck", "--repair")
    assert f"repaired: w1: stale lock {lock}" in repaired.out, repaired.out
    assert not lock.exists()
    repo.ok("spawn", "w1", "--no-launch")


def test_a_stale_registry_lock_no_longer_blocks_the_worker(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    lock = _left_behind(repo.path / ".git" / "refs" / "workers" / "w1.lock")
    r = repo.worker("rm", "w1")
    assert r.code == 1 and str(lock) in r.err, r.err
    repo.ok("fsck", "--repair")
    assert not lock.exists()
    repo.ok("rm", "w1")


def test_a_lock_held_open_is_named_and_kept(sandbox: Sandbox, repo: GitRepo) -> None:
    lock = _left_behind(repo.path / ".git" / "refs" / "heads" / "worker" / "w1.lock")
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import sys, time; f = open({str(lock)!r}); "
                               "print('open', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        fsck = repo.worker("fsck", "--repair")
        assert fsck.code == 1
        assert f"problem: w1: lock {lock} is 1h old but held open by pid {holder.pid} " \
               f"(needs you: if no git command is running, delete it: rm {lock})" in fsck.out
        assert lock.exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_recent_lock_is_left_to_the_git_using_it(repo: GitRepo) -> None:
    lock = _left_behind(repo.path / ".git" / "refs" / "heads" / "main.lock", age=1)
    fsck = repo.worker("fsck", "--repair")
    assert "lock" not in fsck.out, fsck.out
    assert lock.exists()
