"""Linked worktrees: create, inspect, remove.

The administration (<common-dir>/worktrees/<admin-id>/ and the worktree's `.git` file) is
written here in git's on-disk format; the file checkout is delegated to git. Why not
dulwich's add_worktree (1.2.21, measured): its admin id is the directory's basename, so two
worktrees named alike overwrite each other's administration; it checks out twice (main's
HEAD first), leaving files that only exist there behind as untracked; it writes no reflog;
and its Python checkout is 5-8x slower than git's on 5,000 files.
"""

from __future__ import annotations

import os

from git_worker import git, refnames
from git_worker.errors import GitCommandError, WorkerError
from git_worker.repo import Repo, append_reflog

INITIALIZING = "initializing (git-worker spawn)"


class Created:
    """A worktree add() made: what discard_new() takes away again."""

    def __init__(self, path: str, admin_dir: str, made_parent: str | None) -> None:
        self.path = path
        self.admin_dir = admin_dir
        self.made_parent = made_parent  # the topmost directory this call created above path


def admin_dir_of(path: str) -> str | None:
    """The administrative directory a worktree's `.git` file points to, if readable."""
    try:
        with open(os.path.join(path, ".git"), encoding="utf-8", errors="surrogateescape") as f:
            line = f.readline().strip()
    except OSError:
        return None
    if not line.startswith("gitdir: "):
        return None
    target = line[len("gitdir: ") :]
    return os.path.normpath(os.path.join(path, target))


class RealPaths:
    """os.path.realpath for many paths below a few directories, each directory resolved
    once (realpath costs an lstat per component, and list and fsck check a thousand
    worktrees that share their parents). Meant for one command's look at the worktrees:
    a directory that becomes a symlink after it was resolved is not seen."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        known = self._known.get(path)
        if known is not None:
            return known
        if not os.path.isabs(path) or os.path.normpath(path) != path:
            return os.path.realpath(path)  # '..' after a symlink: realpath's own rules
        parent, name = os.path.split(path)
        if not name:
            return path  # the root
        full = os.path.join(self(parent), name)
        real = os.path.realpath(full) if os.path.islink(full) else full
        self._known[path] = real
        return real


def problem(repo: Repo, path: str, branch_ref: str,
            realpath: RealPaths | None = None) -> str | None:
    """Why ``path`` is not a linked worktree of ``repo`` with ``branch_ref`` checked out,
    or None when it is.

    Everything is checked from both ends, because the agent writes the worktree (its
    `.git` file too) and may have replaced that file by a repository of its own or pointed
    it elsewhere: the `.git` file names an admin dir directly under
    <common-dir>/worktrees/, whose `gitdir` names this worktree back, whose `commondir` is
    this repository, and whose HEAD is the branch. ``realpath``: one shared by the calls
    of one command (see RealPaths).
    """
    real = realpath or RealPaths()
    try:
        if not os.path.isdir(path):
            return f"worktree {path} is missing"
        gitfile = os.path.join(path, ".git")
        admin = admin_dir_of(path) if os.path.isfile(gitfile) and not os.path.islink(
            gitfile) else None
        common = real(repo.common_dir)
        if (admin is None or not os.path.isdir(admin)
                or os.path.dirname(real(admin)) != os.path.join(common, "worktrees")
                or not _names(os.path.join(admin, "gitdir"), real(gitfile), real)
                or not _names(os.path.join(admin, "commondir"), common, real)):
            return f"worktree {path} is not a registered git worktree"
        head = head_branch(admin)
        if head != branch_ref:
            where = refnames.short(head) if head else "a detached HEAD"
            return f"worktree is on {where}, not {refnames.short(branch_ref)}"
    except OSError as e:
        return f"worktree: unknown ({e.strerror})"
    return None


def _names(pointer: str, real_target: str, realpath: RealPaths) -> bool:
    """Whether the one-line file ``pointer`` names ``real_target`` (a real path; a relative
    path in the file is relative to its directory, as git reads `commondir` and a relative
    `gitdir`)."""
    try:
        with open(pointer, encoding="utf-8", errors="surrogateescape") as f:
            named = f.read().strip()
    except FileNotFoundError:
        return False
    if not os.path.isabs(named):
        # A leading '..' (commondir holds '../..') goes up from the file's directory once
        # that is resolved, as realpath would: folding it first would skip a symlink.
        base, parts = realpath(os.path.dirname(pointer)), named.split("/")
        while parts and parts[0] in ("..", "."):
            if parts.pop(0) == "..":
                base = os.path.dirname(base)
        named = os.path.join(base, *parts)
    return realpath(named) == real_target


def find_admin_dir(repo: Repo, path: str) -> str | None:
    """The admin dir whose `gitdir` file names ``path`` — found even when ``path`` is gone."""
    return admin_dir_in(repo.common_dir, path)


def admin_dir_in(common_dir: str, path: str) -> str | None:
    """find_admin_dir, given the common dir alone."""
    root = os.path.join(common_dir, "worktrees")
    want = os.path.join(os.path.abspath(path), ".git")
    try:
        names = os.listdir(root)
    except OSError:
        return None
    for name in names:
        try:
            with open(os.path.join(root, name, "gitdir"), encoding="utf-8") as f:
                if os.path.normpath(f.read().strip()) == want:
                    return os.path.join(root, name)
        except OSError:
            continue
    return None


def head_branch(admin_dir: str) -> str | None:
    """The branch a worktree has checked out (refs/heads/…), or None if detached/unknown."""
    try:
        with open(os.path.join(admin_dir, "HEAD"), encoding="utf-8") as f:
            head = f.read().strip()
    except OSError:
        return None
    return head[5:] if head.startswith("ref: ") else None


def add(repo: Repo, path: str, branch_ref: str, oid: str) -> Created:
    """Create a worktree at ``path`` with ``branch_ref`` (already at ``oid``) checked out.

    All or nothing: on failure, whatever this call made is removed before it raises.
    ``path`` must not exist: a directory already there may be someone's files.
    """
    path = os.path.abspath(path)
    made_parent = _make_parents(os.path.dirname(path))
    admin: str | None = None
    made_path = False
    try:
        try:
            os.mkdir(path)
        except FileExistsError:
            raise WorkerError(
                f"worktree path {path} already exists",
                hint="move it away, or set another place with git config worker.worktreeDir",
            ) from None
        except OSError as e:  # e.g. a file where a parent directory should be
            raise WorkerError(f"cannot create the worktree {path}: {e.strerror}",
                              hint="check git config worker.worktreeDir") from None
        made_path = True
        admin = _reserve_admin_dir(repo, os.path.basename(path))
        _write(os.path.join(admin, "locked"), INITIALIZING + "\n")  # keeps `git worktree prune` off
        _write(os.path.join(admin, "commondir"), "../..\n")
        _write(os.path.join(admin, "gitdir"), os.path.join(path, ".git") + "\n")
        _write(os.path.join(admin, "HEAD"), f"ref: {branch_ref}\n")
        _write_head_reflog(admin, oid, branch_ref)
        _write(os.path.join(path, ".git"), f"gitdir: {admin}\n")
        # git's checkout: fast (C) and it honours .gitattributes, filters and sparse
        # settings exactly like `git worktree add`; in parallel (one worker per core, git's
        # checkout.workers=0: ~25% faster on 5,000 files here) unless the user chose.
        env = git.clean_env()
        chosen = git.run(["config", "--get", "checkout.workers"], cwd=path, env=env,
                         check=False).returncode == 0
        parallel = [] if chosen else ["-c", "checkout.workers=0"]
        git.run([*parallel, "read-tree", "--reset", "-u", "HEAD"], cwd=path, env=env)
        os.remove(os.path.join(admin, "locked"))
    except BaseException:
        if made_path:
            _rmtree(path)
        if admin:
            _rmtree(admin)
        remove_made_parents(made_parent, os.path.dirname(path))
        raise
    return Created(path, admin, made_parent)


def dirty_paths(repo: Repo, path: str) -> list[str]:
    """Modified, staged and untracked (not ignored) paths in the worktree at ``path``.

    git is pointed at the admin dir this repository has for ``path``, never at what the
    worktree's `.git` names: an agent may have made that a repository of its own, whose
    config (core.fsmonitor, …) would run its commands as the user.
    """
    admin = find_admin_dir(repo, path)
    if admin is None:
        raise WorkerError(f"worktree {path} is not a registered git worktree",
                          hint="git worker fsck explains the drift")
    # git CLI: dulwich's status is pure Python and far slower on big trees.
    out = git.run(
        [f"--git-dir={admin}", f"--work-tree={path}", "status", "--porcelain=v1", "-z",
         "--untracked-files=normal", "--ignore-submodules=none"],
        cwd=path,
        env=git.clean_env(),
    ).stdout.decode(errors="surrogateescape")
    return [item[3:] for item in out.split("\0") if len(item) > 3 and item[2] == " "]


def changed_tracked(repo: Repo, path: str) -> list[str]:
    """Tracked paths with uncommitted changes (staged or not) in the worktree at ``path``
    (a linked one through the admin dir registered for it, as dirty_paths)."""
    admin = find_admin_dir(repo, path)
    pin = [f"--git-dir={admin}", f"--work-tree={path}"] if admin else []
    out = git.run([*pin, "status", "--porcelain", "-z", "--untracked-files=no"], cwd=path,
                  env=git.clean_env()).stdout.decode(errors="replace")
    return [p[3:] for p in out.split("\0") if len(p) > 3]


def remove(repo: Repo, path: str, *, force: bool) -> None:
    """Remove a worktree the way `git worktree remove` does (it refuses a dirty one).

    Not dulwich's remove_worktree: in 1.2.21 it deletes a dirty worktree without force, and
    with force it removes a locked one.
    """
    argv = ["worktree", "remove", *(["--force"] if force else []), path]
    try:
        git.run(argv, cwd=repo.common_dir, env=git.clean_env())
    except GitCommandError as e:
        raise WorkerError(
            f"git refused to remove the worktree {path}: {e.stderr.strip()}",
            hint="commit or stash the changes there, or pass --force to discard them",
        ) from None


def discard_new(created: Created) -> None:
    """Undo add(): only for a worktree this process has just created and nobody used."""
    _rmtree(created.path)
    _rmtree(created.admin_dir)
    remove_made_parents(created.made_parent, os.path.dirname(created.path))


def _rmtree(path: str) -> None:
    import shutil  # not at module level: list imports this module and never removes

    shutil.rmtree(path, ignore_errors=True)


class Listed:
    """One worktree as `git worktree list --porcelain` describes it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.branch: str | None = None  # refs/heads/…, None when detached or bare
        self.prunable: str | None = None  # git's reason, when it would prune this one


def listed(repo: Repo) -> list[Listed]:
    """Every worktree git knows (main included), read from `git worktree list`."""
    out = git.output(["worktree", "list", "--porcelain", "-z"], cwd=repo.common_dir,
                     env=git.clean_env())
    found: list[Listed] = []
    for item in out.split("\0"):
        if item.startswith("worktree "):
            found.append(Listed(item[len("worktree ") :]))
        elif item.startswith("branch ") and found:
            found[-1].branch = item[len("branch ") :]
        elif item.startswith("prunable") and found:
            found[-1].prunable = item[len("prunable") :].strip() or "prunable"
    return found


def holders(repo: Repo, branch_ref: str) -> list[str]:
    """Paths of the worktrees that have ``branch_ref`` checked out."""
    return [w.path for w in listed(repo) if w.branch == branch_ref]


def prunable(repo: Repo) -> list[str]:
    """Worktrees plain git would prune, as "path: reason"."""
    return [f"{w.path}: {w.prunable}" for w in listed(repo) if w.prunable]


def prune(repo: Repo) -> str:
    out = git.run(["worktree", "prune", "--verbose"], cwd=repo.common_dir, env=git.clean_env())
    return (out.stdout + out.stderr).decode(errors="replace").strip()


def remove_made_parents(made_parent: str | None, start: str) -> None:
    """Remove empty directories from ``start`` up to and including ``made_parent``."""
    if not made_parent:
        return
    current = start
    while True:
        try:
            os.rmdir(current)
        except OSError:
            return
        if current == made_parent or len(current) <= len(made_parent):
            return
        current = os.path.dirname(current)


def _make_parents(directory: str) -> str | None:
    """makedirs, returning the topmost directory it created (None if all existed)."""
    missing = []
    current = directory
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        except OSError as e:
            remove_made_parents(missing[-1], os.path.dirname(d))
            raise WorkerError(f"cannot create {d}: {e.strerror}") from None
    return missing[-1] if missing else None


def _reserve_admin_dir(repo: Repo, name: str) -> str:
    """A fresh <common-dir>/worktrees/<name>[N]; mkdir is the atomic reservation."""
    root = os.path.join(repo.common_dir, "worktrees")
    os.makedirs(root, exist_ok=True)
    for n in range(1000):
        candidate = os.path.join(root, name if n == 0 else f"{name}{n}")
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue
    raise WorkerError(f"too many worktree administrative directories named {name}* in {root}")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)


def _write_head_reflog(admin: str, oid: str, branch_ref: str) -> None:
    append_reflog(os.path.join(admin, "logs", "HEAD"), "0" * 40, oid,
                  f"git-worker: checkout {branch_ref}")
