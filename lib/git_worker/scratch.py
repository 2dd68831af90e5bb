"""A scratch worktree: a detached checkout of one commit, away from the user's worktrees,
gone again however its owner ends — a return, an exception, ^C, SIGTERM or SIGKILL.

The cleanup is done by a small reaper process started first: it waits for end-of-file on a
pipe that only the owner holds (the kernel closes it when the owner dies, however it dies),
then ends every process still working in the scratch directory (a gate the owner started),
removes the worktree and its administration, and exits. A normal exit closes the pipe too,
so there is one cleanup path for every way out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager

from git_worker import git
from git_worker.repo import Repo

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

PREFIX = "git-worker-scratch-"

# Runs in a fresh interpreter (`python -c`): argv = common dir, scratch root, then the git
# commands that remove the worktree, as JSON (git.scratch_cleanup_commands). A program of
# its own, importing nothing of git-worker: it is handed its commands.
_REAPER = r"""
import json, os, shutil, signal, subprocess, sys
common, root, commands = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.stdin.buffer.read()  # EOF: the owner closed the pipe or died
try:
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
except OSError:
    pids = []
for pid in pids:
    if pid == os.getpid():
        continue
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        continue
    if cwd == root or cwd.startswith(root + os.sep):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": common}
remove, prune = commands
subprocess.call(remove, **quiet)
shutil.rmtree(root, ignore_errors=True)
subprocess.call(prune, **quiet)
"""


@contextmanager
def checkout(repo: Repo, commit: str) -> Iterator[str]:
    """A detached worktree at ``commit`` in a new temporary directory; its path."""
    root = tempfile.mkdtemp(prefix=PREFIX)
    path = os.path.join(root, "tree")
    reaper = subprocess.Popen(
        # -P: not the current directory first on sys.path (it may be a worktree's)
        [sys.executable, "-P", "-c", _REAPER, repo.common_dir, root,
         json.dumps(git.scratch_cleanup_commands(path))],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=git.clean_env(), start_new_session=True,  # a ^C to our group must not end it
    )
    try:
        repo.add_detached_worktree(path, commit)
        yield path
    finally:
        assert reaper.stdin is not None
        reaper.stdin.close()
        reaper.wait()
