"""worker.copy: untracked files (`.env`) copied from the main worktree into a new one.

Three promises:
- Nothing is written outside the new worktree. Every directory on the way is opened
  relative to the one before it, without following symlinks (O_NOFOLLOW, dir_fd), so a
  tracked symlink (`cfg -> ../../elsewhere`) stops the copy with an error instead of
  leading it out; a symlink that matches a pattern is copied as a symlink, never read
  through. The spawn's undo removes exactly what was written.
- The copies are not the worker's work: `git status` and `git add -A` in that worktree
  ignore them (its own `core.excludesFile`, set in the worktree's `config.worktree`; the
  main worktree is untouched), so an agent's `git add -A` does not commit the secret.
- `rm` does not count an unchanged copy as work: the runtime dir keeps each copy's
  SHA-256 (copied.json); a copy changed since the spawn is work and is kept unless --force.
"""

from __future__ import annotations

import os
import stat

from git_worker import worktrees
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry.runtime import RuntimeDir, write_atomically
from git_worker.repo import (
    Repo,
    config_file_get,
    config_file_set,
    config_file_unset,
    excludes_file,
)

# hashlib and json are imported where a copy is made or checked: rm and spawn of a worker
# without worker.copy never do (~4 ms of CPU).

_HINT = "fix or remove the pattern: git config --unset-all worker.copy"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Copied:
    """What copy() wrote into a worktree: files and symlinks (``written``, each with its
    digest) and the directories it created (``made``), as paths relative to the worktree."""

    def __init__(self, worktree: str) -> None:
        self.worktree = worktree
        self.written: dict[str, str] = {}
        self.made: list[str] = []


def copy(repo: Repo, config: Config, worktree: str, copied: Copied) -> None:
    """Copy what worker.copy matches in the main worktree into ``worktree``, recording each
    write in ``copied`` as it happens (so an undo given ``copied`` removes it all, even
    after a failure half-way). Never overwrites what the checkout put there."""
    import glob  # here: rm imports this module and never globs

    source = repo.main_worktree
    for pattern in config.values("worker.copy"):
        if os.path.isabs(pattern) or ".." in pattern.split("/"):
            raise WorkerError(f"worker.copy pattern '{pattern}' must stay inside the repository",
                              hint="use a glob relative to the repository (e.g. .env), or "
                                   "remove it: git config --unset-all worker.copy")
        matches = glob.glob(pattern, root_dir=source, recursive=True, include_hidden=True)
        for found in sorted(matches):
            parts = os.path.normpath(found).split(os.sep)
            if parts[0] == ".git":
                continue
            _check_source(source, parts, pattern)
            _copy_tree(source, parts, copied, pattern)


def undo(copied: Copied) -> None:
    """Remove what copy() wrote (files, links, then the directories it made), relative to
    the worktree without following symlinks."""
    for rel in sorted(copied.written, reverse=True):
        try:
            with _Parent(copied.worktree, rel.split("/")[:-1], None) as fd:
                os.unlink(rel.split("/")[-1], dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            pass
    for rel in sorted(copied.made, reverse=True):
        try:
            with _Parent(copied.worktree, rel.split("/")[:-1], None) as fd:
                os.rmdir(rel.split("/")[-1], dir_fd=fd)
        except OSError:
            pass


def save(repo: Repo, runtime: str, copied: Copied) -> None:
    """The manifest rm compares against, and the worktree's exclude file."""
    import json

    write_atomically(RuntimeDir(runtime).copied_manifest,
                     json.dumps(copied.written, indent=1, sort_keys=True) + "\n")
    lines = [_exclude_line(rel) for rel in sorted(copied.written)]
    user = _user_excludes(repo)
    header = (f"# git-worker: files worker.copy put in {copied.worktree}; they are not the\n"
              "# worker's work. Followed by your own excludes file, which this one replaces\n"
              "# in that worktree.\n")
    write_atomically(RuntimeDir(runtime).copied_exclude,
                     header + "\n".join(lines) + "\n" + user)


def exclude(repo: Repo, admin_dir: str, runtime: str) -> bool:
    """Make the worktree whose administration is ``admin_dir`` ignore the copies.

    git reads info/exclude from the common dir only (shared by every worktree), so the
    per-worktree way is `extensions.worktreeConfig` and a `core.excludesFile` in that
    worktree's config.worktree. Returns whether the extension was switched on here (the
    spawn's undo switches it off again). A repository whose common config sets
    core.worktree is left alone (git asks to move it first): the copies are then shown by
    git status, and rm still knows them.
    """
    common = os.path.join(repo.common_dir, "config")
    if config_file_get(common, "core.worktree") is not None:
        return False
    worktree_config = os.path.join(admin_dir, worktrees.WORKTREE_CONFIG)
    config_file_set(worktree_config, "core.excludesFile", RuntimeDir(runtime).copied_exclude)
    if config_file_get(common, "core.bare") in ("true", "yes", "on", "1"):
        # read by every worktree once the extension is on: this one is not bare
        config_file_set(worktree_config, "core.bare", "false")
    # The agent can write this file (it is in its admin dir): git-worker keeps what it
    # wrote, and runs git there only while the file is exactly that (worktrees.pin).
    worktrees.save_config(admin_dir, runtime)
    if config_file_get(common, "extensions.worktreeConfig") == "true":
        return False
    config_file_set(common, "extensions.worktreeConfig", "true")
    return True


def unexclude(repo: Repo, admin_dir: str) -> None:
    """Undo exclude() switching the extension on — unless another worktree (than the one
    at ``admin_dir``, being undone) uses it now."""
    root = os.path.join(repo.common_dir, "worktrees")
    try:
        others = [os.path.join(root, n) for n in os.listdir(root)
                  if os.path.join(root, n) != admin_dir]
    except OSError:
        others = []
    if any(os.path.exists(os.path.join(d, worktrees.WORKTREE_CONFIG)) for d in others):
        return
    config_file_unset(os.path.join(repo.common_dir, "config"), "extensions.worktreeConfig")


def unchanged(runtime: str, worktree: str) -> list[str]:
    """The copies still exactly as spawn wrote them (not the worker's work)."""
    return [rel for rel, digest in _manifest(runtime).items()
            if _digest_at(worktree, rel) == digest]


def changed(runtime: str, worktree: str) -> list[str]:
    """Copies edited (or replaced) since the spawn: the worker's work, like any change.
    A copy that was deleted is not: nothing would be lost."""
    found = []
    for rel, digest in _manifest(runtime).items():
        now = _digest_at(worktree, rel)
        if now is not None and now != digest:
            found.append(rel)
    return sorted(found)


def discard_unchanged(runtime: str, worktree: str) -> None:
    """Delete the unchanged copies (before `git worktree remove`, which would otherwise
    refuse them as untracked where they are not excluded)."""
    for rel in unchanged(runtime, worktree):
        try:
            with _Parent(worktree, rel.split("/")[:-1], None) as fd:
                os.unlink(rel.split("/")[-1], dir_fd=fd)
        except OSError:
            pass


# --- reading the source --------------------------------------------------------------------


def _check_source(source: str, parts: list[str], pattern: str) -> None:
    """A match reached through a symlinked directory would copy files from wherever it
    points: refused (the link itself, as the last part, is copied as a link)."""
    current = source
    for part in parts[:-1]:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise WorkerError(
                f"worker.copy '{pattern}' matches {'/'.join(parts)}, which is reached "
                f"through the symlink {os.path.relpath(current, source)}; not copied",
                hint=_HINT)


def _copy_tree(source: str, parts: list[str], copied: Copied, pattern: str) -> None:
    src = os.path.join(source, *parts)
    st = os.lstat(src)
    if not stat.S_ISDIR(st.st_mode):
        _copy_one(src, parts, st, copied, pattern)
        return
    for top, dirs, files in os.walk(src):  # followlinks=False: linked dirs land in dirs
        rel_top = os.path.relpath(top, source).split(os.sep)
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            entry = os.lstat(path)
            if not stat.S_ISDIR(entry.st_mode):
                _copy_one(path, [*rel_top, name], entry, copied, pattern)
        if not dirs and not files:
            with _Parent(copied.worktree, rel_top, copied, pattern):
                pass  # an empty directory: make it, like copytree did


def _copy_one(src: str, parts: list[str], st: os.stat_result, copied: Copied,
              pattern: str) -> None:
    import hashlib

    name = parts[-1]
    rel = "/".join(parts)
    with _Parent(copied.worktree, parts[:-1], copied, pattern) as fd:
        if _lexists(name, fd):
            return  # never overwrite what the checkout put there
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(src)
            os.symlink(target, name, dir_fd=fd)
            copied.written[rel] = "link:" + target
            return
        if not stat.S_ISREG(st.st_mode):
            return  # a fifo, a socket, a device: nothing to copy
        digest = hashlib.sha256()
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      stat.S_IMODE(st.st_mode), dir_fd=fd)
        copied.written[rel] = ""  # exists now: the undo removes it even if the copy fails
        try:
            with open(src, "rb", opener=_no_follow) as f:
                while chunk := f.read(1 << 16):
                    digest.update(chunk)
                    os.write(out, chunk)
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
        except OSError as e:  # a full disk: write() names no file
            if e.filename is None:
                e.filename = os.path.join(copied.worktree, *parts)
            raise
        finally:
            os.close(out)
        copied.written[rel] = "sha256:" + digest.hexdigest()


# --- walking the worktree without following symlinks ------------------------------------------


class _Parent:
    """A descriptor of worktree/dirs…, for a with block: each part opened with O_NOFOLLOW
    relative to the one before. With ``copied``, missing directories are made (and
    recorded); a part that is a symlink or a file is refused. (A class, not
    contextlib.contextmanager: see locks.Flock.)"""

    def __init__(self, worktree: str, dirs: list[str], copied: Copied | None,
                 pattern: str = "") -> None:
        fd = os.open(worktree, _DIR_FLAGS)
        try:
            done: list[str] = []
            for part in dirs:
                if part in ("", ".", ".."):
                    raise WorkerError(f"worker.copy: unexpected path part '{part}'",
                                      hint=_HINT)
                done.append(part)
                if copied is not None and not _lexists(part, fd):
                    os.mkdir(part, 0o777, dir_fd=fd)
                    copied.made.append("/".join(done))
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if copied is None:
                        raise
                    raise _leads_out(worktree, done, pattern, e) from None
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _leads_out(worktree: str, done: list[str], pattern: str, e: OSError) -> WorkerError:
    path = os.path.join(worktree, *done)
    rel = "/".join(done)
    if os.path.islink(path):
        what = f"{rel} is a symlink in the new worktree (to {os.readlink(path)})"
    else:
        what = f"{rel} in the new worktree is not a directory ({e.strerror})"
    return WorkerError(f"worker.copy '{pattern}' cannot be copied: {what}; nothing is "
                       "written outside the worktree", hint=_HINT)


def _lexists(name: str, dir_fd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


# --- the manifest and the exclude file ------------------------------------------------------


def _manifest(runtime: str) -> dict[str, str]:
    try:
        with open(RuntimeDir(runtime).copied_manifest, encoding="utf-8") as f:
            import json  # only for a manifest there is: rm of a worker without copies

            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _digest_at(worktree: str, rel: str) -> str | None:
    """What is at worktree/rel now, in the manifest's terms (None: nothing there)."""
    import hashlib

    parts = rel.split("/")
    try:
        with _Parent(worktree, parts[:-1], None) as fd:
            st = os.lstat(parts[-1], dir_fd=fd)
            if stat.S_ISLNK(st.st_mode):
                return "link:" + os.readlink(parts[-1], dir_fd=fd)
            if not stat.S_ISREG(st.st_mode):
                return "other"
            digest = hashlib.sha256()
            file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            with open(file_fd, "rb") as f:
                while chunk := f.read(1 << 16):
                    digest.update(chunk)
            return "sha256:" + digest.hexdigest()
    except FileNotFoundError:
        return None
    except OSError:
        return "unreadable"


def _exclude_line(rel: str) -> str:
    """A gitignore pattern that matches exactly the path ``rel`` (anchored, escaped)."""
    escaped = "".join("\\" + c if c in "\\*?[]!# " else c for c in rel)
    return "/" + escaped


def _user_excludes(repo: Repo) -> str:
    """The excludes file the user's config names (or git's default), which the
    worktree's own core.excludesFile replaces: its patterns are carried over."""
    path = excludes_file(repo.main_worktree)
    if not path:
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".config")
        path = os.path.join(xdg, "git", "ignore")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f"# from {path}\n" + f.read()
    except OSError:
        return ""
