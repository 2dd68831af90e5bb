"""Worker ids: validated once, here, before anything is created.

An id becomes a ref name (refs/workers/<id>, refs/heads/<prefix><id>), a directory name
(<worktreeDir>/<id>, <git-common-dir>/workers/<id>) and a tmux session name, so it must
be safe as all of them. Rather than enumerate what is dangerous, accept a small alphabet
that is safe everywhere, and explain the refusal.
"""

from __future__ import annotations

from git_worker.errors import WorkerError

MAX_LENGTH = 80

# Sets, not regular expressions: `import re` costs every spawn ~2 ms before its checkout.
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FIRST = _UPPER | frozenset("abcdefghijklmnopqrstuvwxyz0123456789")  # ASCII only
_ALPHABET = _FIRST | frozenset("._-")
_UPPER_OR_UNDERSCORE = _UPPER | frozenset("_")


def _reserved(candidate: str) -> bool:
    """A name git gives meaning to on its own: HEAD, FETCH_HEAD, ORIG_HEAD, ... (an
    upper-case name ending in _HEAD)."""
    prefix = candidate.removesuffix("HEAD")
    return prefix != candidate and (
        not prefix or (prefix.endswith("_") and _UPPER_OR_UNDERSCORE.issuperset(prefix)))


def problem(candidate: str) -> str | None:
    """Why ``candidate`` cannot be a worker id, or None when it can."""
    if not candidate:
        return "it is empty"
    if len(candidate) > MAX_LENGTH:
        return f"it is longer than {MAX_LENGTH} characters"
    if candidate.startswith("-"):
        return "it starts with '-'"
    if candidate[0] not in _FIRST or not _ALPHABET.issuperset(candidate):
        return "only letters, digits, '.', '_' and '-' are allowed, starting with a letter or digit"
    if ".." in candidate:
        return "it contains '..'"
    if candidate.endswith((".", ".lock")):
        return "it ends with '.' or '.lock'"
    if _reserved(candidate):
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
