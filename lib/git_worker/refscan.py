"""Ref names read straight from the repository's files, for tab completion.

Completion must feel instant, and `import dulwich.repo` alone costs 50-100 ms, a `git`
process a few more. Listing refs/workers/* needs neither: a ref is a loose file under
<common-dir>/refs/ or a line of <common-dir>/packed-refs. This module only *lists names*
(no OIDs are trusted, nothing is written); everything that acts on refs goes through
repo.py. Imports: os only, so the completion fast path stays fast.
"""

from __future__ import annotations

import os


def git_dirs(cwd: str | None = None) -> tuple[str, str] | None:
    """(git dir, common dir) of the repository around ``cwd``, found the way git finds it
    in the common cases: $GIT_DIR, else the nearest `.git` directory or `gitdir:` file
    (a linked worktree), else a bare repository. None when there is none."""
    env_dir = os.environ.get("GIT_DIR")
    if env_dir:
        git_dir: str | None = os.path.abspath(env_dir)
    else:
        git_dir = _discover(os.path.abspath(cwd or os.getcwd()))
    if git_dir is None:
        return None
    common = os.environ.get("GIT_COMMON_DIR")
    if not common:
        try:
            with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as f:
                common = os.path.normpath(os.path.join(git_dir, f.read().strip()))
        except OSError:
            common = git_dir
    return git_dir, common


def _discover(start: str) -> str | None:
    d = start
    while True:
        dot_git = os.path.join(d, ".git")
        if os.path.isdir(dot_git):
            return dot_git
        if os.path.isfile(dot_git):
            try:
                with open(dot_git, encoding="utf-8") as f:
                    line = f.readline().strip()
            except OSError:
                return None
            if line.startswith("gitdir:"):
                return os.path.normpath(os.path.join(d, line[7:].strip()))
            return None
        if _is_bare(d):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _is_bare(d: str) -> bool:
    return (os.path.isfile(os.path.join(d, "HEAD"))
            and os.path.isdir(os.path.join(d, "objects"))
            and os.path.isdir(os.path.join(d, "refs")))


def names_under(common_dir: str, prefix: str) -> list[str]:
    """Sorted names of the refs below ``prefix`` (e.g. "refs/workers/"), without the prefix.

    Loose refs and packed-refs together, as git sees them. A repository using the reftable
    format has neither: then ask `git for-each-ref` (still no dulwich).
    """
    if os.path.isdir(os.path.join(common_dir, "reftable")):
        return _names_from_git(common_dir, prefix)
    found = set()
    root = os.path.join(common_dir, *prefix.rstrip("/").split("/"))
    for dirpath, _dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in files:
            if name.endswith(".lock"):  # a ref being written, not (yet) a ref
                continue
            found.add(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
    try:
        with open(os.path.join(common_dir, "packed-refs"), "rb") as f:
            packed = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        packed = ""
    for line in packed.splitlines():
        # "<oid> <refname>"; '#' starts the header, '^' a peeled tag's target.
        if line[:1] in ("#", "^", ""):
            continue
        name = line.partition(" ")[2]
        if name.startswith(prefix):
            found.add(name[len(prefix):])
    return sorted(found)


def _names_from_git(common_dir: str, prefix: str) -> list[str]:
    from git_worker import git  # here, not at the top: the loose/packed path must not pay for it

    return git.ref_names(common_dir, prefix)
