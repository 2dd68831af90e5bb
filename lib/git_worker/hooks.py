"""The git hooks git-worker ships (hooks/), installed into a repository.

Where the files are: inside the package, lib/git_worker/hooks/ (package data, so every
installation carries them); the checkout's top-level `hooks/` is a symlink to it.

Install never overwrites a hook: an existing one is renamed to `<name>.pre-git-worker`
(bytes, mode and symlink-ness kept, since it is a rename) and our hook runs it after its
own checks, with the same arguments and input. Uninstall renames it back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from git_worker import git, installation
from git_worker.errors import WorkerError
from git_worker.repo import Repo

MARKER = b"# git-worker hook:"
CHAINED_SUFFIX = ".pre-git-worker"
# Three hook directories, three names: the git hooks git-worker ships (here), the one a
# repository's git runs hooks from (repo_hooks_dir), and the agents' (each adapter's
# `hook`, agents/base.py).
SHIPPED_GIT_HOOKS_DIR = os.path.dirname(
    installation.location(installation.REFERENCE_TRANSACTION_HOOK))
# git's hook names: other files in hooks/ (agent hooks, docs) are not installed into .git.
GIT_HOOKS = frozenset({
    "applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit",
    "pre-merge-commit", "prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase",
    "post-checkout", "post-merge", "pre-push", "pre-receive", "update",
    "proc-receive", "post-receive", "post-update", "reference-transaction",
    "push-to-checkout", "pre-auto-gc", "post-rewrite", "sendemail-validate",
    "fsmonitor-watchman", "p4-changelist", "p4-prepare-changelist", "p4-post-changelist",
    "p4-pre-submit", "post-index-change",
})


@dataclass
class Change:
    name: str
    path: str
    what: str  # installed, updated, chained, removed, restored, absent, foreign


def shipped() -> list[str]:
    try:
        names = os.listdir(SHIPPED_GIT_HOOKS_DIR)
    except OSError as e:
        raise WorkerError(f"git-worker's hooks are missing ({SHIPPED_GIT_HOOKS_DIR}: {e.strerror})",
                          hint=installation.current().repair()) from None
    return sorted(n for n in names if n in GIT_HOOKS)


def repo_hooks_dir(repo: Repo) -> str:
    """The directory git runs hooks from: core.hooksPath if set, else <git-dir>/hooks."""
    return git.hooks_path(repo.cwd_worktree or repo.common_dir)


def is_ours(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return MARKER in f.read(512)
    except OSError:
        return False


def install(repo: Repo) -> list[Change]:
    installation.require(installation.REFERENCE_TRANSACTION_HOOK)  # names it if it is gone
    directory = repo_hooks_dir(repo)
    os.makedirs(directory, exist_ok=True)
    changes = []
    for name in shipped():
        dest = os.path.join(directory, name)
        chained = dest + CHAINED_SUFFIX
        with open(os.path.join(SHIPPED_GIT_HOOKS_DIR, name), "rb") as f:
            content = f.read()
        if is_ours(dest):
            what = "updated"
        elif os.path.lexists(dest):
            if os.path.lexists(chained):
                raise WorkerError(
                    f"cannot install {name}: both {dest} and {chained} exist",
                    hint="move one of them away, then run git worker hooks install again",
                )
            os.rename(dest, chained)
            what = "chained"
        else:
            what = "installed"
        _write_executable(dest, content)
        changes.append(Change(name, dest, what))
    return changes


def uninstall(repo: Repo) -> list[Change]:
    directory = repo_hooks_dir(repo)
    changes = []
    for name in shipped():
        dest = os.path.join(directory, name)
        chained = dest + CHAINED_SUFFIX
        if not os.path.lexists(dest):
            what = "absent"
        elif not is_ours(dest):
            what = "foreign"  # someone replaced ours: theirs now, leave it
        else:
            os.remove(dest)
            what = "removed"
            if os.path.lexists(chained):
                os.rename(chained, dest)
                what = "restored"
        changes.append(Change(name, dest, what))
    return changes


def installed(repo: Repo) -> dict[str, bool]:
    directory = repo_hooks_dir(repo)
    return {name: is_ours(os.path.join(directory, name)) for name in shipped()}


def _write_executable(path: str, content: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(content)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
