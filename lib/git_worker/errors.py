"""The one expected error type.

Every failure a user can cause or fix is a WorkerError: its message says what happened
and what to do next. The CLI prints it and exits 1; anything else is a bug (exit 3).
"""

from __future__ import annotations

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
