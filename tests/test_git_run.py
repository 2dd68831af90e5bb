"""git.run without subprocess: what it promises is what subprocess.run gave (see
git._spawned), proven against real git."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import GitRepo
from git_worker import git
from git_worker.errors import GitCommandError, WorkerError
from git_worker.repo import Repo


def test_output_exit_code_and_stderr_as_git_gives_them(repo: GitRepo) -> None:
    sub = repo.path / "sub"
    sub.mkdir()
    done = git.run(["rev-parse", "--show-toplevel", "--show-prefix"], cwd=str(sub))
    assert done.stdout.decode().split() == [str(repo.path), "sub/"]
    assert done.returncode == 0 and done.stderr == b""
    failed = git.run(["rev-parse", "--verify", "nope"], cwd=str(repo.path), check=False)
    assert failed.returncode == 128 and b"fatal: Needed a single revision" in failed.stderr
    with pytest.raises(GitCommandError) as e:
        git.run(["rev-parse", "--verify", "nope"], cwd=str(repo.path))
    assert e.value.argv == ["git", "rev-parse", "--verify", "nope"]


def test_stdin_is_empty_without_input(repo: GitRepo) -> None:
    """No input: git reads /dev/null (never our terminal)."""
    done = git.run(["hash-object", "--stdin"], cwd=str(repo.path))
    assert done.stdout.strip() == subprocess.run(
        ["git", "hash-object", "--stdin"], cwd=repo.path, input=b"",
        capture_output=True).stdout.strip()


def test_much_input_and_much_output_at_once_never_deadlock(repo: GitRepo) -> None:
    """cat-file --batch with more to write and to read than a pipe holds (64 KiB): both
    are moved as they come."""
    head = repo.git("rev-parse", "HEAD").strip()
    specs = [head, "0" * 40] * 3000
    objects = Repo.discover(str(repo.path)).read_objects(specs)
    assert len(objects) == 6000 and objects[1] is None and objects[0] is not None
    assert objects[0][0] == "commit" and objects[-2] == objects[0]
    echoed = git.run(["hash-object", "--stdin"], cwd=str(repo.path), input=b"x" * 1_000_000)
    assert echoed.stdout.strip() == subprocess.run(
        ["git", "hash-object", "--stdin"], cwd=repo.path, input=b"x" * 1_000_000,
        capture_output=True).stdout.strip()


def test_git_gets_no_descriptor_of_ours_and_default_signals(repo: GitRepo) -> None:
    """As subprocess (close_fds, restore_signals): an inheritable descriptor we hold is not
    git's, and git dies of SIGPIPE as it would in a shell (Python ignores it)."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        shown = git.run(["-c", "alias.fds=!ls /proc/$$/fd; grep SigIgn /proc/$$/status",
                         "fds"], cwd=str(repo.path)).stdout.decode().split()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert str(write_end) not in shown[:-2]
    ignored = int(shown[-1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)) and not ignored & (1 << (signal.SIGXFSZ - 1))


def test_no_git_on_path_says_so(repo: GitRepo, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WorkerError, match="git is not on PATH"):
        git.run(["--version"])


def test_a_git_killed_by_a_signal_has_a_negative_exit_code(repo: GitRepo) -> None:
    """As subprocess tells it: -N for a git that signal N ended (here its alias's shell
    kills git, its parent)."""
    done = git.run(["-c", "alias.die=!kill -TERM $PPID", "die"], cwd=str(repo.path),
                   check=False)
    assert done.returncode == -signal.SIGTERM


def test_an_interrupted_run_leaves_no_git_behind(repo: GitRepo, tmp_path: Path) -> None:
    """Ctrl-C while git runs: git is killed and reaped (no process, no zombie), as
    subprocess.run does."""
    pids = tmp_path / "pids"

    def interrupt(signum: int, frame: object) -> None:
        if pids.exists() and len(pids.read_text().split()) == 2:
            raise KeyboardInterrupt
        signal.setitimer(signal.ITIMER_REAL, 0.05)  # not started yet: look again

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(KeyboardInterrupt):
            git.run(["-c", f"alias.wait=!echo $PPID $$ > {pids}.tmp && mv {pids}.tmp {pids}"
                           " && exec sleep 60", "wait"], cwd=str(repo.path))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    git_pid, sleep_pid = map(int, pids.read_text().split())
    with contextlib.suppress(ProcessLookupError):  # git's child, which git could not end
        os.kill(sleep_pid, signal.SIGKILL)
    assert not os.path.exists(f"/proc/{git_pid}")
