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
import stat

from git_worker import git, refnames
from git_worker.errors import GitCommandError, WorkerError
from git_worker.repo import Repo, append_reflog, read_file

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

INITIALIZING = "initializing (git-worker spawn)"


class Created:
    """A worktree add() made: what discard_new() takes away again."""

    def __init__(self, path: str, admin_dir: str, made_parent: str | None) -> None:
        self.path = path
        self.admin_dir = admin_dir
        self.made_parent = made_parent  # the topmost directory this call created above path


def _text(data: bytes, errors: str = "strict") -> str:
    return data.decode("utf-8", errors).replace("\r\n", "\n").replace("\r", "\n")


def admin_dir_of(path: str) -> str | None:
    """The administrative directory a worktree's `.git` file points to, if readable."""
    try:
        data = read_file(os.path.join(path, ".git"), until=b"\r\n")
    except OSError:
        return None
    line = _text(data, "surrogateescape").partition("\n")[0].strip()
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
        gitfile = os.path.join(path, ".git")
        try:  # one lstat: a `.git` there means ``path`` is a directory
            is_file = stat.S_ISREG(os.lstat(gitfile).st_mode)
        except OSError:
            if not os.path.isdir(path):
                return f"worktree {path} is missing"
            is_file = False
        admin = admin_dir_of(path) if is_file else None
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
        named = _text(read_file(pointer), "surrogateescape").strip()
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
    """find_admin_dir, given the common dir alone: the admin dirs read in directory order
    up to the first that names ``path`` (git's choice too: it reads them in that order),
    not all of them (half as many files on average: rm's pin, ~140 worktrees, ~0.5 ms)."""
    wanted = AdminDirs.key(path)
    return next((admin for named, admin in AdminDirs(common_dir).named() if named == wanted),
                None)


class AdminDirs:
    """find_admin_dir for many paths: every admin dir's `gitdir` read once, on first use
    (reading them all for each worker made list and fsck quadratic: 5,500 file reads for
    100 workers, measured). Meant for one command's look at the worktrees, like RealPaths."""

    def __init__(self, common_dir: str) -> None:
        self.root = os.path.join(common_dir, "worktrees")
        self._by_gitdir: dict[str, str] | None = None

    def find(self, path: str) -> str | None:
        """The admin dir whose `gitdir` file names ``path`` (the first in directory order,
        as find_admin_dir always took), or None."""
        if self._by_gitdir is None:
            self._by_gitdir = {}
            for named, admin in self.named():
                self._by_gitdir.setdefault(named, admin)
        return self._by_gitdir.get(self.key(path))

    @staticmethod
    def key(path: str) -> str:
        """What the `gitdir` file of the worktree at ``path`` says (see named)."""
        return os.path.join(os.path.abspath(path), ".git")

    def named(self) -> Iterator[tuple[str, str]]:
        """(what its `gitdir` file names, the admin dir) for each admin dir with one, in
        directory order."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return
        for name in names:
            try:
                data = read_file(os.path.join(self.root, name, "gitdir"))
            except OSError:
                continue
            # as Python decodes a path: an agent's bytes there never stop list or fsck
            yield os.path.normpath(_text(data, "surrogateescape").strip()), \
                os.path.join(self.root, name)


def head_branch(admin_dir: str) -> str | None:
    """The branch a worktree has checked out (refs/heads/…), or None if detached/unknown."""
    return git.head_branch(admin_dir)




def add(repo: Repo, path: str, branch_ref: str, oid: str, *,
        parallel_checkout: bool | None = None) -> Created:
    """start_add(), finished: the worktree is there, its files checked out."""
    return start_add(repo, path, branch_ref, oid, parallel_checkout=parallel_checkout).finish()


class Adding:
    """A worktree start_add() has made, its files still being checked out by git: the
    caller does what does not touch the worktree meanwhile, then finish() (or discard())."""

    def __init__(self, created: Created, checkout: git.Running) -> None:
        self.created = created
        self._checkout: git.Running | None = checkout
        self._discarded = False

    def finish(self) -> Created:
        """Wait for the checkout; the worktree is then ready (unlocked). On failure,
        whatever start_add made is removed before this raises."""
        if self._checkout is not None:
            try:
                self._checkout.wait()
                os.remove(os.path.join(self.created.admin_dir, "locked"))
            except BaseException:
                self.discard()
                raise
            self._checkout = None
        return self.created

    def discard(self) -> None:
        """Undo start_add(), the checkout stopped first if it still runs: only for a
        worktree this process has just created and nobody used. Once: a failed finish()
        has discarded it already, before the caller's undo asks again."""
        if self._checkout is not None:
            self._checkout.stop()
            self._checkout = None
        if not self._discarded:
            self._discarded = True
            discard_new(self.created)


# How long recovery waits for the checkout a killed spawner left running (a minute: 5,000
# files take ~0.2 s; a checkout that is still not done is left to fsck --repair again).
CHECKOUT_WAIT = 60.0


def wait_for_checkout(repo: Repo, path: str, timeout: float = CHECKOUT_WAIT) -> None:
    """Wait until no checkout writes the worktree at ``path`` any more: a spawner killed
    while git checked its files out leaves that git running (holding the worktree's
    `index.lock`), and until it ends its files look like uncommitted work."""
    admin = find_admin_dir(repo, path)
    if admin is None or not os.path.exists(os.path.join(admin, "locked")):
        return  # spawn unlocks the worktree once its checkout is done
    import time

    lock = os.path.join(admin, "index.lock")
    deadline = time.monotonic() + timeout
    while os.path.exists(lock) and time.monotonic() < deadline:
        time.sleep(0.05)


def start_add(repo: Repo, path: str, branch_ref: str, oid: str, *,
              parallel_checkout: bool | None = None) -> Adding:
    """Create a worktree at ``path`` with ``branch_ref`` (already at ``oid``) checked out,
    its files written by a git process that runs on when this returns (Adding.finish waits
    for it); ``parallel_checkout``: see git.start_check_out_head.

    Its admin dir stays `locked` (keeping `git worktree prune` off) until finish(). All or
    nothing: on failure, whatever this call made is removed before it raises. ``path``
    must not exist: a directory already there may be someone's files.
    """
    path = os.path.abspath(path)
    made_parent = make_parents(os.path.dirname(path))
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
        # git's checkout (git.start_check_out_head says why), pinned to what was written
        # just now, by us.
        checkout = git.start_check_out_head(git.Pinned(path, admin, repo.common_dir),
                                            parallel=parallel_checkout)
    except BaseException:
        if made_path:
            _rmtree(path)
        if admin:
            _rmtree(admin)
        remove_made_parents(made_parent, os.path.dirname(path))
        raise
    return Adding(Created(path, admin, made_parent), checkout)


# --- git in a worker's worktree: only with the config git-worker wrote ---------------------
# A worker's admin dir (<common-dir>/worktrees/<admin-id>/) is writable by its agent: codex's
# sandbox needs it for the index, HEAD and logs/HEAD, and the other agents are not sandboxed
# at all. git run through it reads two files there that decide what git executes:
# `commondir` (git reads the config of the repository it names) and, once
# extensions.worktreeConfig is on in the repository (worker.copy turns it on), its
# `config.worktree` — core.fsmonitor, core.hooksPath, or a filter driver that the
# worktree's own .gitattributes selects. git-worker runs git there as the user, so:
# - `commondir` is not read: GIT_COMMON_DIR pins this repository (git.pinned_env);
# - `config.worktree` must be exactly what git-worker wrote (a copy kept in the worker's
#   runtime dir, 0700 and in no agent's writable set), or absent where it wrote none — an
#   agent may create one before the extension is on (another spawn turns it on for all).
#   Checked before git runs, rather than overridden with `git -c`: overrides can only name
#   settings known in advance, and a driver's name is chosen by the agent's .gitattributes.
#   Refused otherwise; `fsck` reports it and `--repair` restores git-worker's copy.
WORKTREE_CONFIG = "config.worktree"  # git's name, in the admin dir; our copy has the same


class ConfigChanged(WorkerError):
    """A worker's config.worktree is not what git-worker wrote: no git is run there."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        super().__init__(f"the git config of worktree {path} {why}; git run there would obey "
                         "it (core.fsmonitor, filters…), so git-worker runs none",
                         hint="look at it, then restore what git-worker wrote: "
                              "git worker fsck --repair")


def pin(repo: Repo, path: str, runtime: str | None) -> git.Pinned:
    """The worktree at ``path``, ready for git.in_worktree(); ``runtime`` is the runtime dir
    of the worker it belongs to (None: it is nobody's but the user's — then its
    config.worktree is theirs too). Raises when it is not a worktree of this repository,
    or when its config.worktree is not the one git-worker wrote."""
    admin = find_admin_dir(repo, path)
    if admin is None:
        main = repo.main_worktree
        if main and os.path.realpath(main) == os.path.realpath(path):
            return git.Pinned(path, None, repo.common_dir)
        raise WorkerError(f"worktree {path} is not a registered git worktree",
                          hint="git worker fsck explains the drift")
    if runtime is not None:
        why = config_changed(admin, runtime)
        if why:
            raise ConfigChanged(path, why)
    return git.Pinned(path, admin, repo.common_dir)


def config_problem(repo: Repo, path: str, runtime: str,
                   admin_dirs: AdminDirs | None = None) -> str | None:
    """What pin() would refuse about the config of the worker's worktree at ``path``
    (``admin_dirs``: one index shared by the calls of one command)."""
    admin = (admin_dirs or AdminDirs(repo.common_dir)).find(path)
    why = admin and config_changed(admin, runtime)
    if not why:
        return None
    return f"{ConfigChanged(path, why).message}; look at it, then: git worker fsck --repair"


def config_changed(admin: str, runtime: str) -> str | None:
    """How the config.worktree in ``admin`` differs from git-worker's copy in ``runtime``
    (None: it is that copy, or there is none and none was written). A missing file is not
    a change that matters: git then reads no per-worktree config at all."""
    path = os.path.join(admin, WORKTREE_CONFIG)
    try:
        written = _read_private(os.path.join(runtime, WORKTREE_CONFIG))
    except OSError as e:  # a symlink there (O_NOFOLLOW), say: the copy cannot be trusted
        return f"({path}) cannot be checked: git-worker's copy is unreadable ({e.strerror})"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"({path}) is not a regular file"
    try:
        with open(path, "rb", opener=_no_follow) as f:
            now = f.read()
    except OSError as e:
        return f"({path}) cannot be read ({e.strerror})"
    if written is None:
        return f"({path}) was written by someone else: git-worker wrote none"
    if now != written:
        return f"({path}) was changed since git-worker wrote it"
    return None


def save_config(admin: str, runtime: str) -> None:
    """Keep a copy of the config.worktree git-worker has just written in ``admin``."""
    with open(os.path.join(admin, WORKTREE_CONFIG), "rb") as f:
        data = f.read()
    _write_private(os.path.join(runtime, WORKTREE_CONFIG), data)


def restore_config(admin: str, runtime: str) -> list[str]:
    """Put back the config.worktree git-worker wrote (or remove one it never wrote)."""
    written = _read_private(os.path.join(runtime, WORKTREE_CONFIG))
    path = os.path.join(admin, WORKTREE_CONFIG)
    if written is None:
        _remove_any(path)
        return [f"removed {path}"]
    tmp = f"{path}.git-worker{os.getpid()}"
    _remove_any(tmp)
    _write_private(tmp, written)
    _remove_any(path)  # a directory in its place: rename() would not replace it
    os.rename(tmp, path)
    return [f"restored {path} as git-worker wrote it"]


def _read_private(path: str) -> bytes | None:
    try:
        return read_file(path, follow=False)
    except FileNotFoundError:
        return None


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    with open(fd, "wb") as f:
        f.write(data)


def _remove_any(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        _rmtree(path)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


def dirty_paths(repo: Repo, path: str, runtime: str | None) -> list[str]:
    """Modified, staged and untracked (not ignored) paths in the worktree at ``path``
    (``runtime``: see pin)."""
    return git.uncommitted_paths(pin(repo, path, runtime))


def changed_tracked(repo: Repo, path: str, runtime: str | None) -> list[str]:
    """Tracked paths with uncommitted changes (staged or not) in the worktree at ``path``,
    main or linked (``runtime``: see pin)."""
    return git.changed_tracked_paths(pin(repo, path, runtime))


def remove(repo: Repo, path: str, runtime: str | None, *, force: bool) -> None:
    """Remove a worktree the way `git worktree remove` does (it refuses a dirty one).

    Not dulwich's remove_worktree: in 1.2.21 it deletes a dirty worktree without force, and
    with force it removes a locked one. Without --force git checks the worktree by running
    `git status` there: only after pin() has checked its config, and with the common dir
    pinned. With --force git runs nothing there.
    """
    if not force:
        pin(repo, path, runtime)
    try:
        git.worktree_remove(repo.common_dir, path, force=force)
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


def listed(repo: Repo) -> list[git.ListedWorktree]:
    """Every worktree git knows (main included), read from `git worktree list`."""
    return git.worktree_list(repo.common_dir)


def holders(repo: Repo, branch_ref: str) -> list[str]:
    """Paths of the worktrees that have ``branch_ref`` checked out."""
    return [w.path for w in listed(repo) if w.branch == branch_ref]


def prunable(repo: Repo) -> list[str]:
    """Worktrees plain git would prune, as "path: reason"."""
    return [f"{w.path}: {w.prunable}" for w in listed(repo) if w.prunable]


def prune(repo: Repo) -> str:
    return git.worktree_prune(repo.common_dir)


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


def make_parents(directory: str) -> str | None:
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
