"""The one expected error type.

Every failure a user can cause or fix is a WorkerError: its message says what happened
and what to do next. The CLI prints it and exits 1; anything else is a bug (exit 3).
"""

from __future__ import annotations

import errno
import os

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


class WorkerError(Exception):
    """An expected failure, with a message fit to show a user as it is."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\nhint: {self.hint}"


class GitCommandError(WorkerError):
    """A git command failed; carries the argv, the exit code and stderr."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip() or "(no output)"
        super().__init__(f"'{' '.join(self.argv)}' exited {returncode}: {detail}")


class UsageError(WorkerError):
    """The command line itself is wrong (exit 2)."""


# The world's refusals: a permission, a read-only or full file system. Not bugs (exit 1),
# wherever they surface; the message names the file and says what to do.
_WORLD_ERRNOS = {
    errno.EACCES: "check who owns it and its permissions (ls -ld), or run as the user who "
                  "owns the repository",
    errno.EPERM: "check who owns it and its permissions (ls -ld), or run as the user who "
                 "owns the repository",
    errno.EROFS: "the file system is mounted read-only: remount it read-write, or work on a "
                 "clone that is writable",
    errno.ENOSPC: "the disk is full: free some space (git worker rm the workers you no "
                  "longer need, git gc), then try again",
    errno.EDQUOT: "your disk quota is used up: free some space, then try again",
}


def from_os_error(e: OSError) -> WorkerError | None:
    """The WorkerError for a permission or disk error, or None for any other OSError."""
    hint = _WORLD_ERRNOS.get(e.errno or 0)
    if hint is None:
        return None
    path = os.fsdecode(e.filename) if e.filename is not None else "a file"
    if e.filename2 is not None:
        path = f"{path} -> {os.fsdecode(e.filename2)}"
    what = e.strerror or os.strerror(e.errno or 0)
    if e.errno in (errno.EACCES, errno.EPERM):
        return WorkerError(f"no permission to change {path}: {what}", hint=hint)
    return WorkerError(f"cannot write {path}: {what}", hint=hint)
