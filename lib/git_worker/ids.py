"""Worker ids: validated once, here, before anything is created.

An id becomes a ref name (refs/workers/<id>, refs/heads/<prefix><id>), a directory name
(<worktreeDir>/<id>, <git-common-dir>/workers/<id>) and a tmux session name, so it must
be safe as all of them. Rather than enumerate what is dangerous, accept a small alphabet
that is safe everywhere, and explain the refusal.
"""

from __future__ import annotations

import re

from git_worker.errors import WorkerError

MAX_LENGTH = 80

_ALPHABET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# Names git gives meaning to on their own (HEAD, FETCH_HEAD, ORIG_HEAD, ...).
_RESERVED = re.compile(r"(?:[A-Z_]*_)?HEAD\Z")


def problem(candidate: str) -> str | None:
    """Why ``candidate`` cannot be a worker id, or None when it can."""
    if not candidate:
        return "it is empty"
    if len(candidate) > MAX_LENGTH:
        return f"it is longer than {MAX_LENGTH} characters"
    if candidate.startswith("-"):
        return "it starts with '-'"
    if not _ALPHABET.match(candidate):
        return "only letters, digits, '.', '_' and '-' are allowed, starting with a letter or digit"
    if ".." in candidate:
        return "it contains '..'"
    if candidate.endswith((".", ".lock")):
        return "it ends with '.' or '.lock'"
    if _RESERVED.match(candidate):
        return "git reserves that name"
    return None


def validate(candidate: str) -> str:
    """Return ``candidate`` if it is a valid worker id; raise WorkerError saying why not."""
    why = problem(candidate)
    if why is not None:
        shown = candidate.encode("unicode_escape", "backslashreplace").decode("ascii")
        raise WorkerError(
            f"invalid worker id '{shown[:100]}': {why}",
            hint="use an issue id such as talu-gsga or bd-a3f8e9.1",
        )
    return candidate
