"""Runtime files are private; permission and disk errors are the world's, not bugs.

Modes are checked as they are on disk. Permission errors are provoked as the unprivileged
user of the `user_repo` fixture (root ignores modes): a git directory that user cannot
write makes every command exit 1 and say which file, never exit 3 with a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import GitRepo, UserRepo, release, wait_for


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_runtime_files_are_the_owners_alone(repo: GitRepo, held: Path) -> None:
    (repo.path / ".git" / "workers").mkdir(mode=0o755)  # as an older version left it
    old = os.umask(0o022)
    try:
        repo.git("config", "worker.launcher", "detached")
        repo.ok("spawn", "w1")
        wait_for(lambda: (repo.path / ".git" / "workers" / "w1" / "agent.pid").exists())
    finally:
        os.umask(old)
    runtime = repo.path / ".git" / "workers" / "w1"
    assert _mode(runtime.parent) == 0o700
    assert _mode(runtime) == 0o700
    for name in ("prompt.md", "agent.log", "runner.log", "agent.pid"):
        assert _mode(runtime / name) == 0o600, name
    release(repo, "w1")
    repo.wait("w1", "exited")
    assert _mode(runtime / "exit") == 0o600


def test_a_symlink_in_place_of_a_runtime_dir_is_removed_not_followed(repo: GitRepo) -> None:
    elsewhere = repo.path.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine\n")
    (repo.path / ".git" / "workers").mkdir()
    os.symlink(elsewhere, repo.path / ".git" / "workers" / "w1")
    repo.ok("spawn", "w1", "--no-launch")
    runtime = repo.path / ".git" / "workers" / "w1"
    assert not runtime.is_symlink() and runtime.is_dir()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]
    assert (runtime / "prompt.md").exists()


def test_a_symlinked_runtime_root_is_refused_then_repaired(repo: GitRepo) -> None:
    elsewhere = repo.path.parent / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, repo.path / ".git" / "workers")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1, r.err
    assert f"the runtime directory {repo.path}/.git/workers is a symlink (to {elsewhere})" \
        in r.err
    assert "git worker fsck --repair" in r.err
    assert list(elsewhere.iterdir()) == []
    assert repo.snapshot()["refs"] == before["refs"]
    fsck = repo.worker("fsck", "--repair")
    assert fsck.code == 0, fsck.out + fsck.err
    assert f"removed the symlink {repo.path}/.git/workers" in fsck.out
    repo.ok("spawn", "w1", "--no-launch")
    assert list(elsewhere.iterdir()) == []


def test_a_file_as_runtime_root_is_moved_aside_by_repair(repo: GitRepo) -> None:
    (repo.path / ".git" / "workers").write_text("not a directory\n")
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1 and "workers is not a directory" in r.err, r.err
    fsck = repo.worker("fsck", "--repair")
    assert fsck.code == 0, fsck.out + fsck.err
    kept = [p for p in (repo.path / ".git").iterdir() if p.name.startswith("workers.not-a-")]
    assert [p.read_text() for p in kept] == ["not a directory\n"]
    repo.ok("spawn", "w1", "--no-launch")


def test_repair_removes_a_stray_symlink_in_the_runtime_root(repo: GitRepo) -> None:
    elsewhere = repo.path.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine\n")
    (repo.path / ".git" / "workers").mkdir()
    os.symlink(elsewhere, repo.path / ".git" / "workers" / "gone")
    fsck = repo.worker("fsck", "--repair")
    assert fsck.code == 0, fsck.out + fsck.err  # was 3: rmtree on a symlink
    assert "runtime path" in fsck.out and "is a symlink" in fsck.out
    assert not (repo.path / ".git" / "workers" / "gone").is_symlink()
    assert (elsewhere / "keep.txt").read_text() == "mine\n"


# --- as an unprivileged user ---------------------------------------------------------------


def _read_only(path: Path) -> None:
    subprocess.run(["chmod", "-R", "a-w", str(path)], check=True)


def _writable(path: Path) -> None:
    subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)


def _user_agent(user: UserRepo) -> Path:
    """An agent that waits for <sandbox>/go (not in the runtime dir: that may be read-only)."""
    path = user.sandbox.script("wait-agent", f"""
        echo "waiting"
        while [ ! -e {user.sandbox.root}/go ]; do sleep 0.05; done
        echo done > done.txt
    """)
    user.git("config", "worker.agent", "wait")
    user.git("config", "worker.agent.wait.command", str(path))
    user.git("config", "worker.launcher", "detached")
    return path


def _refused(r: object, what: str) -> None:
    code, err = r.code, r.err  # type: ignore[attr-defined]
    assert code == 1, err
    assert what in err and "ermission denied" in err, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert "\nhint: " in err, err


COMMANDS = {
    "spawn": ["spawn", "w3", "--no-launch"],
    "rm": ["rm", "w1"],
    "review": ["review", "w2"],
    "merge": ["merge", "w2", "--force"],
    "stop": ["stop", "run"],
    "hooks install": ["hooks", "install"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_git_dir_the_user_cannot_write(user_repo: UserRepo, command: str) -> None:
    user = user_repo
    _user_agent(user)
    assert user.worker("spawn", "w1", "w2", "--no-launch").code == 0
    wt = user.repo.workers_dir / "w2"
    (wt / "work.txt").write_text("work\n")
    user.run("git", "add", "work.txt", cwd=wt)
    assert user.run("git", "commit", "-q", "-m", "work", cwd=wt).code == 0
    spawned = user.worker("spawn", "run")
    assert spawned.code == 0, spawned.err
    _read_only(user.path / ".git")
    try:
        _refused(user.worker(*COMMANDS[command]), f"{user.path}/.git/")
    finally:
        _writable(user.path / ".git")
        (user.sandbox.root / "go").touch()
    assert user.worker("show", "run").code == 0


def test_the_runner_says_what_it_could_not_record(user_repo: UserRepo) -> None:
    user = user_repo
    _user_agent(user)
    assert user.worker("spawn", "w1").code == 0
    runtime = user.path / ".git" / "workers" / "w1"
    wait_for(lambda: (runtime / "agent.pid").exists())
    _read_only(user.path / ".git")
    try:
        (user.sandbox.root / "go").touch()
        wait_for(lambda: (user.repo.workers_dir / "w1" / "done.txt").exists())
        wait_for(lambda: "could not record exit" in (runtime / "runner.log").read_text())
    finally:
        _writable(user.path / ".git")
    log = (runtime / "runner.log").read_text()
    assert "could not write exit: no permission to change" in log, log
    assert "Traceback" not in log, log
    fsck = user.worker("fsck", "--repair")  # the truth is lost; fsck says so and repairs
    assert "gone without recording an exit" in fsck.out, fsck.out


@contextlib.contextmanager
def _small_file_system(path: Path, *options: str) -> Iterator[None]:
    """A 64 KiB tmpfs mounted on ``path`` (as root; skipped where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(["size=64k", *options]),
                              "tmpfs", str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (run as root, as .ci/run does): "
                    f"{mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_full_disk_is_exit_1_and_nothing_left_behind(repo: GitRepo) -> None:
    runtime = repo.path / ".git" / "workers"
    with _small_file_system(runtime):
        runtime.chmod(0o700)
        with contextlib.suppress(OSError), open(runtime / "filler", "wb") as f:
            while True:
                f.write(b"x" * 4096)
                f.flush()
        before = repo.snapshot()
        r = repo.worker("spawn", "w1", "--no-launch")
        assert r.code == 1, r.err
        assert f"cannot write {runtime}/w1/" in r.err and "No space left on device" in r.err
        assert "hint: the disk is full: free some space" in r.err
        assert repo.snapshot() == before


def test_a_read_only_file_system_is_exit_1(repo: GitRepo) -> None:
    runtime = repo.path / ".git" / "workers"
    with _small_file_system(runtime, "ro", "mode=700"):
        before = repo.snapshot()
        r = repo.worker("spawn", "w1", "--no-launch")
        assert r.code == 1, r.err
        assert f"cannot write {runtime}" in r.err and "Read-only file system" in r.err
        assert "hint: the file system is mounted read-only" in r.err
        assert repo.snapshot() == before


@pytest.mark.parametrize("number, words", [
    (errno.ENOSPC, "the disk is full"),
    (errno.EROFS, "read-only"),
    (errno.EDQUOT, "quota"),
])
def test_disk_errors_say_what_to_do(number: int, words: str) -> None:
    from git_worker.errors import from_os_error

    error = from_os_error(OSError(number, os.strerror(number), "/repo/.git/objects/ab"))
    assert error is not None
    assert str(error).startswith(f"cannot write /repo/.git/objects/ab: {os.strerror(number)}")
    assert words in str(error)
    assert from_os_error(OSError(errno.ENOENT, "gone", "x")) is None  # not the world's
