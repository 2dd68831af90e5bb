"""The one way git-worker runs the git CLI: argv lists, never a shell.

The one owner of git's argv, with repo.py (refs and objects): every other module asks a
function here named for its question or action (`is_ancestor`, `worktree_remove`,
`head_commit`…) and never spells git's options (tests/test_git_layer.py checks).
dulwich handles refs, objects and worktree administration; the git CLI is used where
dulwich is wrong or slow, and each function says which in a comment.
"""

from __future__ import annotations

import os

# _signal is signal's C half, loaded with the interpreter: its numbers without `import
# signal`, whose enums cost ~1 ms.
from _signal import SIGKILL, SIGPIPE, SIGXFSZ  # type: ignore[import-not-found]  # no stub

from git_worker.errors import GitCommandError, WorkerError

# Types for mypy only. subprocess is imported where a timeout needs it: with the threading,
# selectors, signal and locale it brings, it cost every command ~10 ms of CPU (measured).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Variables that pin git to one repository or worktree. A child that targets another
# worktree must not inherit them, or it would act on ours (pre-commit's no_git_env).
_REPO_PINNING = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
)


def pinned() -> bool:
    """Whether the environment pins git to a repository (GIT_DIR…): then what git finds
    from the current directory and what a command run in another one finds may differ."""
    return any(name in os.environ for name in _REPO_PINNING)


def clean_env(extra: Mapping[str, str] | None = None,
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment (or ``base``) without the variables that pin git to a
    repository."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in _REPO_PINNING}
    if extra:
        env.update(extra)
    return env


class Completed:
    """A git process that has ended: its argv, exit code (-N: killed by signal N), output."""

    __slots__ = ("args", "returncode", "stdout", "stderr")

    def __init__(self, args: list[str], returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def checked(self, ok: Sequence[int] = (0,)) -> Completed:
        """Itself; GitCommandError if git exited otherwise than ``ok``."""
        if self.returncode not in ok:
            raise GitCommandError(self.args, self.returncode,
                                  self.stderr.decode(errors="replace"))
        return self


def run(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
    input: bytes | None = None,
) -> Completed:
    """Run ``git <argv>``; raise GitCommandError on a non-zero exit when ``check``.

    ``env=None`` inherits the caller's environment untouched (so `git -c`, GIT_DIR and
    friends reach git as the user meant); pass ``clean_env()`` to target another worktree.
    """
    full = ["git", *argv]
    if timeout is None:
        proc = _spawned(full, cwd, env, input)
    else:
        proc = _run_with_timeout(full, cwd, env, input, timeout)
    return proc.checked() if check else proc


def _spawned(full: list[str], cwd: str | None, env: Mapping[str, str] | None,
             input: bytes | None) -> Completed:
    """``full`` run to its end with posix_spawn, as subprocess.run would run it (stdin
    ``input`` or /dev/null, stdout and stderr read as they come, no descriptor of ours but
    those three, SIGPIPE and SIGXFSZ at their defaults), without importing subprocess.
    The child is killed and reaped if we are interrupted."""
    return _Child(full, cwd, env, input).collect()


class _Child:
    """A git process started with posix_spawn, its pipes ours to read (see _spawned)."""

    def __init__(self, full: list[str], cwd: str | None, env: Mapping[str, str] | None,
                 input: bytes | None, *, setsid: bool = False, output: bool = True) -> None:
        self.full = full
        self.input = input
        environ = os.environ if env is None else env
        executable = _executable(full[0], environ)
        # git -C is cwd= for git (it changes directory before it reads anything):
        # posix_spawn cannot change the child's directory before Python 3.13.
        argv = [full[0], "-C", cwd, *full[1:]] if cwd is not None else full
        out_r, out_w = os.pipe() if output else (-1, -1)
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if input else (-1, -1)
        stdin = ((os.POSIX_SPAWN_DUP2, in_r, 0) if input
                 else (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        stdout = ((os.POSIX_SPAWN_DUP2, out_w, 1) if output
                  else (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0))
        # subprocess closes every descriptor above 2 in the child (close_fds): ours are
        # close-on-exec already; an inheritable one we were given is closed there.
        actions = [stdin, stdout, (os.POSIX_SPAWN_DUP2, err_w, 2),
                   *((os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds())]
        try:
            # setsid: a session of its own, so that stop() ends git and what it started.
            self.pid = os.posix_spawn(executable, argv, environ, file_actions=actions,
                                      setsigdef=(SIGPIPE, SIGXFSZ), setsid=setsid)
        except BaseException:
            for fd in (out_r, err_r, in_w):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, in_r):
                if fd >= 0:
                    os.close(fd)
        self.out, self.err, self.in_w = out_r, err_r, in_w
        self.setsid = setsid
        self.returncode: int | None = None

    def collect(self) -> Completed:
        """Wait for it to end, feeding it its input and reading its output meanwhile."""
        import select

        out, err = self.out, self.err
        readers = [fd for fd in (out, err) if fd >= 0]
        chunks: dict[int, list[bytes]] = {fd: [] for fd in readers}
        in_w = self.in_w
        status = None
        try:
            poller = select.poll()
            for fd in readers:
                poller.register(fd, select.POLLIN)
            pending = memoryview(self.input or b"")
            if in_w >= 0:
                os.set_blocking(in_w, False)  # write what fits; read meanwhile (no deadlock)
                poller.register(in_w, select.POLLOUT)
            left = len(readers) + (in_w >= 0)
            while left:
                for fd, _ in poller.poll():
                    if fd == in_w:
                        try:
                            pending = pending[os.write(fd, pending[:65536]):]
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:  # git stopped reading: its stderr tells why
                            pending = pending[:0]
                        if not pending:
                            poller.unregister(fd)
                            os.close(fd)
                            in_w, left = -1, left - 1
                    elif data := os.read(fd, 65536):
                        chunks[fd].append(data)
                    else:
                        poller.unregister(fd)
                        left -= 1
            status = os.waitpid(self.pid, 0)[1]
        except BaseException:  # Ctrl-C, say: git must not outlive us, nor stay a zombie
            if status is None:
                self.kill(SIGKILL)
                os.waitpid(self.pid, 0)
            raise
        finally:
            for fd in (out, err, in_w):
                if fd >= 0:
                    os.close(fd)
            self.out = self.err = self.in_w = -1
        self.returncode = os.waitstatus_to_exitcode(status)
        return Completed(self.full, self.returncode, b"".join(chunks.get(out, [])),
                         b"".join(chunks[err]))

    def kill(self, signal_number: int) -> None:
        """Send it a signal (its whole session when it has one), if it is still ours."""
        try:
            if self.setsid:
                os.killpg(self.pid, signal_number)
            else:
                os.kill(self.pid, signal_number)
        except ProcessLookupError:
            pass


_FOUND: dict[str, str] = {}


def _executable(name: str, environ: Mapping[str, str]) -> str:
    """Where ``name`` is on the PATH of ``environ``, as subprocess looks it up (the first
    executable file), once a process; WorkerError when nowhere."""
    path = environ.get("PATH", os.defpath)
    key = f"{name}\0{path}"
    if key in _FOUND:
        return _FOUND[key]
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            if os.path.isabs(candidate):  # a relative one moves with the working directory
                _FOUND[key] = candidate
            return candidate
    raise WorkerError("git is not on PATH", hint="install git 2.39 or newer")


def _inheritable_fds() -> list[int]:
    """Our descriptors above 2 that a child would inherit (normally none: Python opens
    everything close-on-exec)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    found.append(fd)
            except OSError:  # the listing's own descriptor, closed by now
                pass
    return found


def _run_with_timeout(full: list[str], cwd: str | None, env: Mapping[str, str] | None,
                      input: bytes | None, timeout: float) -> Completed:
    import signal
    import subprocess

    try:
        # A session of its own, so a timeout can end git *and* its children (ssh, curl):
        # killing git alone would leave them holding our pipes open.
        child = subprocess.Popen(
            full,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as e:
        raise WorkerError("git is not on PATH", hint="install git 2.39 or newer") from e
    try:
        out, err = child.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        raise
    except BaseException:
        child.kill()
        child.wait()
        raise
    return Completed(full, child.returncode, out, err)


def output(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: bytes | None = None,
) -> str:
    """stdout of a git command that must succeed, decoded, without the final newline."""
    proc = run(argv, cwd=cwd, env=env, timeout=timeout, input=input)
    return proc.stdout.decode(errors="surrogateescape").rstrip("\n")


def interactive(argv: Sequence[str], *, cwd: str | None = None) -> int:
    """Run ``git <argv>`` on the user's terminal (its pager, its colours); its exit code."""
    import subprocess

    try:
        return subprocess.call(["git", *argv], cwd=cwd)
    except FileNotFoundError as e:
        raise WorkerError("git is not on PATH", hint="install git 2.39 or newer") from e


# --- running git in a linked worktree ---------------------------------------------------
# Every git command git-worker runs in (or about the files of) a worker's worktree goes
# through in_worktree(), with a Pinned that worktrees.pin() made after checking it.


class Pinned:
    """A worktree as git-worker runs git in it.

    ``admin`` is the administrative dir this repository registered for it (found from the
    common dir's side), never what the worktree's `.git` file names, which the agent may
    have replaced; None for the main worktree, which is the user's own and found by git
    from its files as always.
    """

    def __init__(self, worktree: str, admin: str | None, common_dir: str) -> None:
        self.worktree = worktree
        self.admin = admin
        self.common_dir = common_dir


def pinned_env(common_dir: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment that pins git's common dir (config, hooks, refs, objects) to
    this repository: an admin dir's `commondir` file is the agent's to rewrite (it can
    write that dir), and git would read the config of whatever repository it names."""
    return clean_env({**(extra or {}), "GIT_COMMON_DIR": common_dir})


# A setting that runs a command by its name alone, turned off for git-worker's own git in a
# linked worktree. worktrees.pin() has just checked that the worktree's config.worktree is
# git-worker's; this covers the instant between that check and git reading the file.
# (Filter and diff drivers cannot be covered this way: .gitattributes chooses their names.)
NO_FSMONITOR = ("-c", "core.fsmonitor=false")


def in_worktree(pinned: Pinned, argv: Sequence[str], *, action: str | None = None,
                check: bool = True) -> Completed:
    """Run ``git <argv>`` in the worktree ``pinned`` names, through its registered admin
    dir with this repository's config and nothing the worktree or its admin dir names.
    ``action`` is the reflog's name for it (GIT_REFLOG_ACTION); no editor is ever opened."""
    full, env = _pinned_command(pinned, argv, action)
    return run(full, cwd=pinned.worktree, env=env, check=check)


def _pinned_command(pinned: Pinned, argv: Sequence[str],
                    action: str | None = None) -> tuple[list[str], dict[str, str]]:
    """in_worktree's git arguments and environment. Optional locks off: a `status` that
    refreshed the index would hold the worktree's index.lock for a moment, and the agent's
    own `git add` or `git commit` there would fail on it (a lock a command needs is still
    taken: this only stops the opportunistic rewrite of the index)."""
    extra = {"GIT_EDITOR": "true", "GIT_OPTIONAL_LOCKS": "0",
             **({"GIT_REFLOG_ACTION": action} if action else {})}
    if pinned.admin is None:
        return list(argv), clean_env(extra)
    return ([*NO_FSMONITOR, f"--git-dir={pinned.admin}", f"--work-tree={pinned.worktree}",
             *argv], pinned_env(pinned.common_dir, extra))


def merge_in(pinned: Pinned, commit: str, message: str, action: str) -> bool:
    """`git merge --no-edit COMMIT` in the worktree; False when it stopped (conflict)."""
    proc = in_worktree(pinned, ["merge", "--no-edit", "--no-stat", "--quiet", "-m", message,
                                commit], action=action, check=False)
    return proc.returncode == 0


def rebase_in(pinned: Pinned, onto: str, action: str) -> bool:
    """`git rebase ONTO` in the worktree; False when it stopped (conflict)."""
    return in_worktree(pinned, ["rebase", "--quiet", onto], action=action,
                       check=False).returncode == 0


def abort_in(pinned: Pinned, operation: str) -> None:
    """`git merge --abort` or `git rebase --abort`: back to before it started."""
    in_worktree(pinned, [operation, "--abort"])


def unmerged_paths(pinned: Pinned) -> list[str]:
    """Paths with unresolved conflicts in the worktree's index, each once."""
    out = in_worktree(pinned, ["diff", "--name-only", "--diff-filter=U", "-z"]).stdout
    return list(dict.fromkeys(p for p in out.decode(errors="surrogateescape").split("\0") if p))


def head_commit(pinned: Pinned) -> str:
    """The commit the worktree's HEAD points to."""
    # git, not dulwich: the HEAD is in the admin dir, which Repo's refs container (opened
    # on the common dir) does not read, and may name a packed branch or be detached.
    out = in_worktree(pinned, ["rev-parse", "--verify", "HEAD"]).stdout
    return out.decode(errors="surrogateescape").strip()


CHECKOUT_WORKERS = "checkout.workers"  # git's setting: how many processes a checkout uses
# What Config reads: every worker.* setting, and whether the user chose checkout.workers.
SETTINGS = rf"^worker\.|^{CHECKOUT_WORKERS}$"
_CHECKOUT_WORKERS_SET: dict[str, bool] = {}  # common dir -> whether the user set it


class Running:
    """A git command started and not waited for yet (start()): the caller does something
    else meanwhile."""

    def __init__(self, child: _Child) -> None:
        self._child = child
        self._done: Completed | None = None

    def _collect(self) -> Completed:
        if self._done is None:
            self._done = self._child.collect()
        return self._done

    def output(self, ok: Sequence[int] = (0,)) -> bytes:
        """Wait for it to end; its stdout. GitCommandError if it exited otherwise than
        ``ok``."""
        return self._collect().checked(ok).stdout

    def wait(self) -> None:
        """Wait for it to end; GitCommandError if it failed."""
        self.output()

    def completed(self) -> Completed:
        """Wait for it to end; what it did (its stderr too). GitCommandError if it failed."""
        return self._collect().checked()

    def stop(self) -> None:
        """End it and what it started (a filter it runs, say, which holds its pipes), if it
        still runs, and wait for it (a rollback's first step)."""
        if self._done is not None:
            return  # waited for already
        self._child.kill(SIGKILL)  # start() gave it a session of its own
        self._collect()


def start(argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
          output: bool = True) -> Running:
    """Start ``git <argv>`` (as run() would, without a timeout) and return at once;
    ``output``: keep its stdout for Running.output (else it goes nowhere). In a session of
    its own, as run() with a timeout: Running.stop ends git and its children at once."""
    return Running(_Child(["git", *argv], cwd, env, None, setsid=True, output=output))


def start_check_out_head(pinned: Pinned, *, parallel: bool | None = None) -> Running:
    """Start writing the index and files of a new worktree from its HEAD; the caller
    waits for it (Running.wait) and may do other work meanwhile.

    git's checkout, not dulwich's build_index_from_tree: fast (C), and it honours
    .gitattributes, filters and sparse settings exactly like `git worktree add`.
    ``parallel``: True asks for one worker per core (git's checkout.workers=0: ~25% faster
    on 5,000 files here) — for callers that know the user did not set checkout.workers
    (spawn reads it with the settings); False leaves git its own choice (checkout.workers,
    if the user set it, else serial): when several worktrees are checked out at once
    (spawn of several ids, one thread per core), the threads are the parallelism, and a
    serial checkout each spends ~15% less CPU (8 ids: ~10% less wall time than parallel
    checkouts, measured); None: parallel unless the user set checkout.workers (asked once a
    process)."""
    if parallel is None:
        chosen = _CHECKOUT_WORKERS_SET.get(pinned.common_dir)
        if chosen is None:
            chosen = in_worktree(pinned, ["config", "--get", CHECKOUT_WORKERS],
                                 check=False).returncode == 0
            _CHECKOUT_WORKERS_SET[pinned.common_dir] = chosen
        parallel = not chosen
    workers = ["-c", f"{CHECKOUT_WORKERS}=0"] if parallel else []
    argv, env = _pinned_command(pinned, [*workers, "read-tree", "--reset", "-u", "HEAD"])
    return start(argv, cwd=pinned.worktree, env=env, output=False)


def uncommitted_paths(pinned: Pinned) -> list[str]:
    """Modified, staged and untracked (not ignored) paths in the worktree."""
    # git CLI: dulwich's status is pure Python and far slower on big trees.
    out = in_worktree(
        pinned,
        ["status", "--porcelain=v1", "-z", "--untracked-files=normal", "--ignore-submodules=none"],
    ).stdout.decode(errors="surrogateescape")
    return [item[3:] for item in out.split("\0") if len(item) > 3 and item[2] == " "]


def changed_tracked_paths(pinned: Pinned) -> list[str]:
    """Tracked paths with uncommitted changes, staged or not, in the worktree."""
    # git CLI, as for uncommitted_paths.
    out = in_worktree(pinned, ["status", "--porcelain", "-z", "--untracked-files=no"]).stdout
    return [p[3:] for p in out.decode(errors="replace").split("\0") if len(p) > 3]


def fast_forward_in(pinned: Pinned, commit: str, action: str) -> str | None:
    """`git merge --ff-only COMMIT` in the worktree: git moves its branch and its files
    together (dulwich has no fast-forward that updates a worktree). None when done, else
    git's stderr."""
    proc = in_worktree(pinned, ["merge", "--ff-only", "--quiet", "--no-stat", commit],
                       action=action, check=False)
    return None if proc.returncode == 0 else proc.stderr.decode(errors="replace")


# --- HEAD, read one way ------------------------------------------------------------------


def head_branch(git_dir: str) -> str | None:
    """The branch (refs/heads/…) a HEAD has checked out — the repository's (its git dir) or a
    linked worktree's (its admin dir) — or None when detached or unreadable.

    The HEAD file itself, not `git symbolic-ref` (a process) nor dulwich (whose refs
    container reads the common dir, where a linked worktree's HEAD is not)."""
    try:  # os.read: list reads one HEAD per worker, and open() costs 17 us to its 1
        fd = os.open(os.path.join(git_dir, "HEAD"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 4096)  # one short line
        finally:
            os.close(fd)
        head = data.decode().strip()
    except (OSError, UnicodeDecodeError):  # a HEAD an agent wrote may hold any bytes
        return None
    return head[5:] if head.startswith("ref: ") else None


# --- worktrees, from the common dir ------------------------------------------------------
# Not dulwich's worktree functions: in 1.2.21 remove_worktree deletes a dirty worktree
# without force and a locked one with it; its list does not say what prune would prune.


class ListedWorktree:
    """One worktree as `git worktree list --porcelain` describes it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.branch: str | None = None  # refs/heads/…, None when detached or bare
        self.prunable: str | None = None  # git's reason, when it would prune this one


def worktree_list(common_dir: str) -> list[ListedWorktree]:
    """Every worktree git knows (main included)."""
    out = output(["worktree", "list", "--porcelain", "-z"], cwd=common_dir, env=clean_env())
    found: list[ListedWorktree] = []
    for item in out.split("\0"):
        if item.startswith("worktree "):
            found.append(ListedWorktree(item[len("worktree ") :]))
        elif item.startswith("branch ") and found:
            found[-1].branch = item[len("branch ") :]
        elif item.startswith("prunable") and found:
            found[-1].prunable = item[len("prunable") :].strip() or "prunable"
    return found


def worktree_remove(common_dir: str, path: str, *, force: bool) -> None:
    """`git worktree remove [--force] PATH`; GitCommandError when git refuses (a dirty
    worktree without ``force``). Without force git runs `git status` in the worktree: the
    caller has pinned it first, and the common dir is pinned here; untracked files count
    whatever `status.showUntrackedFiles` says (a `-c` reaches git's status: git passes it
    on to the commands it runs)."""
    check = [] if force else ["-c", "status.showUntrackedFiles=normal"]
    argv = [*NO_FSMONITOR, *check, "worktree", "remove", *(["--force"] if force else []), path]
    run(argv, cwd=common_dir, env=pinned_env(common_dir))


def worktree_prune(common_dir: str) -> str:
    """`git worktree prune --verbose`: what it said it pruned."""
    out = run(["worktree", "prune", "--verbose"], cwd=common_dir, env=clean_env())
    return (out.stdout + out.stderr).decode(errors="replace").strip()


def scratch_cleanup_commands(path: str) -> list[list[str]]:
    """The full argv lists (git included; run in the common dir) that remove the scratch
    worktree at ``path`` for good, for scratch.py's reaper: a program of its own that
    outlives git-worker, so it imports none of it and is handed its commands instead.
    Hooks off: nothing of the repository's runs at cleanup."""
    git = ["git", "-c", "core.hooksPath=/dev/null"]
    return [[*git, "worktree", "remove", "--force", "--force", path], [*git, "worktree", "prune"]]


# --- commits and trees, in the object store alone ----------------------------------------
# git's merge machinery (merge-ort) and revision walks: dulwich 1.2.21 has no merge-ort,
# and its pure-Python walks are far slower on long histories.


def merge_tree(common_dir: str, ours: str, theirs: str) -> tuple[str, list[str], list[str]]:
    """Merge two commits without index or worktree (`git merge-tree --write-tree`): the
    tree written, the conflicted paths (each once) and git's CONFLICT messages.
    GitCommandError when git could not merge at all."""
    proc = run(["merge-tree", "--write-tree", "-z", "--name-only", "--messages", ours, theirs],
               cwd=common_dir, env=clean_env(), check=False).checked(ok=(0, 1))
    fields = proc.stdout.decode(errors="surrogateescape").split("\0")
    tree, conflicts, messages = fields[0], list[str](), list[str]()
    if proc.returncode == 0:
        return tree, conflicts, messages
    # -z: TREE NUL path NUL … NUL NUL, then messages: <n> NUL path×n NUL type NUL text NUL …
    i = 1
    while i < len(fields) and fields[i]:
        if fields[i] not in conflicts:
            conflicts.append(fields[i])
        i += 1
    i += 1
    while i < len(fields) and fields[i].isdigit():
        n = int(fields[i])
        kind, text = fields[i + n + 1], fields[i + n + 2]
        if kind.startswith("CONFLICT"):
            messages.append(text.strip())
        i += n + 3
    return tree, conflicts, messages


def is_ancestor(common_dir: str, older: str, newer: str) -> bool:
    """Whether ``older`` is ``newer`` or one of its ancestors."""
    proc = run(["merge-base", "--is-ancestor", older, newer], cwd=common_dir, env=clean_env(),
               check=False)
    return proc.returncode == 0


def subjects(common_dir: str, since: str, until: str, *, limit: int) -> list[str]:
    """The subjects of the commits in ``since..until``, newest first, at most ``limit``."""
    out = output(["log", "--format=%s", f"--max-count={limit}", f"{since}..{until}"],
                 cwd=common_dir, env=clean_env())
    return out.splitlines()


def commit_tree(cwd: str, tree: str, parents: Sequence[str], message: str, *,
                env: Mapping[str, str] | None = None) -> str:
    """A new commit of ``tree`` (`git commit-tree`), referenced by nothing yet. ``env=None``:
    the user's identity and config, as for any commit they make. GitCommandError when git
    cannot (no identity, say)."""
    # git, not dulwich: the identity comes out as the user's git would make it (includes,
    # the system file, GIT_AUTHOR_*, EMAIL), which dulwich 1.2.21 does not all read.
    argv = ["commit-tree", tree, *(a for p in parents for a in ("-p", p)), "-F", "-"]
    return run(argv, cwd=cwd, env=env, input=message.encode()).stdout.decode().strip()


def show_diff(cwd: str, options: Sequence[str], base: str, branch: str) -> int:
    """`git diff OPTIONS BASE...BRANCH` on the user's terminal (git's pager, colours and
    options): what merging ``branch`` into ``base`` would bring. Its exit code."""
    return interactive(["diff", *options, f"{base}...{branch}", "--"], cwd=cwd)


# --- remotes -----------------------------------------------------------------------------


def remote_names(cwd: str) -> list[str]:
    # git, not dulwich's config: remotes may come from included files (see below).
    return output(["remote"], cwd=cwd).split()


def fetch_branch(cwd: str, remote: str, branch: str, *, env: Mapping[str, str],
                 timeout: float) -> str | None:
    """`git fetch REMOTE BRANCH` (no tags): None when it worked, else git's stderr.
    subprocess.TimeoutExpired when it took longer than ``timeout`` (git and its ssh are
    killed)."""
    # git, not dulwich's client: the user's transports, credential helpers and ssh setup.
    proc = run(["fetch", "--no-tags", "--quiet", remote, branch], cwd=cwd, env=env,
               check=False, timeout=timeout)
    return proc.stderr.decode(errors="replace").strip() if proc.returncode else None


def remote_heads(cwd: str, remote: str, branch: str, *, env: Mapping[str, str],
                 timeout: float) -> tuple[str, str | None]:
    """`git ls-remote --heads REMOTE BRANCH`: (what it listed, None) when the remote
    answered, else ("", git's stderr). subprocess.TimeoutExpired as for fetch_branch."""
    # git, not dulwich's client, as for fetch_branch.
    proc = run(["ls-remote", "--heads", remote, branch], cwd=cwd, env=env, check=False,
               timeout=timeout)
    if proc.returncode != 0:
        return "", proc.stderr.decode(errors="replace")
    return proc.stdout.decode(errors="replace"), None


# --- configuration and identity ----------------------------------------------------------
# `git config` rather than dulwich: dulwich 1.2.21 ignores include/includeIf, the system
# file and `git -c`, which the user's git honours.


def is_set(cwd: str, key: str) -> bool:
    """Whether the configuration git reads in ``cwd`` sets ``key``."""
    return run(["config", key], cwd=cwd, check=False).returncode == 0


def user_name() -> str:
    """user.name as git reads it here, or "" when unset."""
    proc = run(["config", "user.name"], check=False)
    return proc.stdout.decode(errors="replace").strip()


def config_with_origins(pattern: str, common_dir: str | None) -> bytes:
    """`git config -z --show-origin --show-scope --get-regexp PATTERN` of the repository
    whose git directory is ``common_dir`` (None: wherever git finds itself from here), as
    git prints it; b"" when nothing matches. GitCommandError when git cannot read it."""
    return config_output(start_config_with_origins(pattern, common_dir))


def start_config_with_origins(pattern: str, common_dir: str | None) -> Running:
    """config_with_origins, begun: its answer is config_output(what this returns)."""
    argv = ["config", "-z", "--show-origin", "--show-scope", "--get-regexp", pattern]
    if common_dir is None:
        return start(argv)
    # clean_env: GIT_DIR/GIT_WORK_TREE must not point git elsewhere; the -c settings
    # (GIT_CONFIG_PARAMETERS, GIT_CONFIG_COUNT…) are kept.
    return start([f"--git-dir={common_dir}", *argv], cwd=common_dir, env=clean_env())


def start_config_here(pattern: str) -> Running | None:
    """start_config_with_origins before the repository is known: git finds it from the
    current directory, as `rev-parse` does beside it. None when the environment pins git
    to a repository (GIT_DIR…), where the settings must be read as load() reads them.
    Its answer is config_output_here(what this returns, …)."""
    if pinned():
        return None
    return start(["config", "-z", "--show-origin", "--show-scope", "--get-regexp", pattern])


def config_output_here(running: Running, git_dir: str, common_dir: str,
                       toplevel: str | None) -> bytes | None:
    """What start_config_with_origins(``common_dir``) would have printed, from what
    start_config_here's git printed in the repository discovery found (``git_dir``,
    ``common_dir``, ``toplevel``); None when that is not certain — in a linked worktree
    (its own config.worktree and `onbranch` includes), a bare repository, an include
    named by a relative path, git failing — and the settings must be read again."""
    if git_dir != common_dir or toplevel is None:
        running.stop()
        return None
    try:
        found = config_output(running)
    except GitCommandError:
        return None
    fields = found.split(b"\0")
    # Records are: scope NUL origin NUL key [LF value] NUL. git names the repository's own
    # files relative to the top of the worktree (file:.git/config), where --git-dir names
    # them as given (file:<common_dir>/config).
    top = os.fsencode(toplevel)
    common = os.fsencode(common_dir)
    for i in range(1, len(fields) - 1, 3):
        origin = fields[i]
        if origin.startswith(b"file:") and not origin.startswith(b"file:/"):
            path = os.path.join(top, origin[len(b"file:"):])
            if os.path.dirname(path) != common \
                    or os.path.basename(path) not in (b"config", b"config.worktree"):
                return None
            fields[i] = b"file:" + path
    return b"\0".join(fields)


def config_output(running: Running) -> bytes:
    """What start_config_with_origins' git printed (b"": no match)."""
    return running.output(ok=(0, 1))  # 1: no match


def committer_ident(cwd: str) -> str | None:
    """`git var GIT_COMMITTER_IDENT` (name, email and date), None when git has no identity."""
    # git: only it knows whether it would find an identity (config, EMAIL, its fallbacks).
    proc = run(["var", "GIT_COMMITTER_IDENT"], cwd=cwd, check=False)
    return proc.stdout.decode(errors="replace").strip() if proc.returncode == 0 else None


def hooks_path(cwd: str) -> str:
    """The directory git runs hooks from: core.hooksPath if set, else <git-dir>/hooks."""
    # `rev-parse --git-path hooks` applies core.hooksPath the way git itself does.
    return output(["rev-parse", "--path-format=absolute", "--git-path", "hooks"], cwd=cwd)


def version() -> str:
    """What `git --version` says."""
    return output(["--version"])


# --- for tab completion: quick, quiet, never an error ------------------------------------
# Imported lazily, off the worker-id fast path (refscan reads ref files without git). git,
# not dulwich: `import dulwich.repo` alone costs 50-100 ms, more than completion's budget.


def _quietly(argv: Sequence[str], cwd: str | None = None) -> str:
    import subprocess

    try:
        return run(argv, cwd=cwd, check=False, timeout=5).stdout.decode(errors="replace")
    except (WorkerError, OSError, subprocess.TimeoutExpired):
        return ""


def ref_names(common_dir: str, prefix: str) -> list[str]:
    """Names of the refs below ``prefix``, without it, sorted; [] when git cannot say."""
    out = _quietly([f"--git-dir={common_dir}", "for-each-ref", "--format=%(refname)", prefix])
    return sorted(line[len(prefix):] for line in out.splitlines() if line.startswith(prefix))


def branch_names() -> list[str]:
    """Short names of the local and remote-tracking branches here; [] when git cannot say."""
    return _quietly(["for-each-ref", "--format=%(refname:short)", "refs/heads/",
                     "refs/remotes/"]).splitlines()


def settings_matching(pattern: str) -> list[tuple[str, str]]:
    """(key, value) of each setting git reads here whose key matches ``pattern``; [] when
    git cannot say."""
    out = _quietly(["config", "--get-regexp", pattern])
    return [(key, value) for key, _, value in (line.partition(" ") for line in out.splitlines())]


# --- the team remote (team.py): records pushed and fetched with leases -------------------


class Pushed:
    """What `git push --porcelain` said of one ref."""

    def __init__(self, ref: str, flag: str, summary: str) -> None:
        self.ref = ref  # the remote ref
        self.flag = flag  # ' ' '+' '-' '*' '=' done; '!' rejected
        self.summary = summary  # "[new reference]", "[rejected] (stale info)", …

    @property
    def ok(self) -> bool:
        return self.flag != "!"


def push(cwd: str, remote: str, updates: Mapping[str, str | None], leases: Mapping[str, str],
         *, env: Mapping[str, str], timeout: float) -> tuple[dict[str, Pushed], str]:
    """Push ``updates`` (remote ref → local commit, None to delete it), each ref only if it
    is on the remote at the value its lease names ("" = the ref must not exist).

    `--force-with-lease=<ref>:<expect>` is a compare-and-swap on the remote (git 2.39's
    remote.c: an empty <expect> is the null OID, i.e. "must not exist"). Not --atomic:
    each ref stands on its own. Returns each ref's outcome and git's stderr; no outcome
    at all means the remote was not reached (the stderr says why).
    """
    # Not --quiet: it silences --porcelain's line for every ref that was pushed.
    argv = ["push", "--porcelain", "--no-verify"]
    argv += [f"--force-with-lease={ref}:{leases.get(ref, '')}" for ref in updates]
    argv += ["--", remote]
    argv += [f"{oid}:{ref}" if oid else f":{ref}" for ref, oid in updates.items()]
    proc = run(argv, cwd=cwd, env=env, check=False, timeout=timeout)
    outcome = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        flag, tab, rest = line.partition("\t")
        if not tab or len(flag) != 1:
            continue  # "To <url>", "Done"
        spec, _, summary = rest.partition("\t")
        ref = spec.rpartition(":")[2]
        outcome[ref] = Pushed(ref, flag, summary)
    return outcome, proc.stderr.decode(errors="replace")


def fetch_refs(cwd: str, remote: str, refspecs: Sequence[str], *, env: Mapping[str, str],
               timeout: float) -> str | None:
    """`git fetch --prune REMOTE REFSPEC…` (pruning only what the refspecs map); None when
    it worked, else git's stderr."""
    argv = ["fetch", "--quiet", "--no-tags", "--prune", "--no-write-fetch-head",
            "--no-recurse-submodules", remote, *refspecs]
    proc = run(argv, cwd=cwd, env=env, check=False, timeout=timeout)
    return None if proc.returncode == 0 else proc.stderr.decode(errors="replace") or "failed"


def remote_refs(cwd: str, remote: str, refs: Sequence[str], *, env: Mapping[str, str],
                timeout: float) -> tuple[dict[str, str], str | None]:
    """`git ls-remote REMOTE REF…`: the remote's value of each of ``refs`` it has (full
    names), and git's stderr when the remote was not reached (else None)."""
    proc = run(["ls-remote", "--", remote, *refs], cwd=cwd, env=env, check=False,
               timeout=timeout)
    if proc.returncode != 0:
        return {}, proc.stderr.decode(errors="replace") or "failed"
    found = {}
    for line in proc.stdout.decode(errors="surrogateescape").splitlines():
        oid, _, ref = line.partition("\t")
        if ref in refs:
            found[ref] = oid
    return found, None


def remote_url(cwd: str, remote: str) -> str | None:
    """`git remote get-url REMOTE`, or None when there is no such remote."""
    proc = run(["remote", "get-url", "--", remote], cwd=cwd, check=False)
    return proc.stdout.decode(errors="surrogateescape").strip() if proc.returncode == 0 \
        else None


def config_get_regexp(cwd: str, pattern: str) -> dict[str, str]:
    """key (lowercased by git) → last value, for every setting matching ``pattern``."""
    proc = run([f"--git-dir={cwd}", "config", "-z", "--get-regexp", pattern], cwd=cwd,
               env=clean_env(), check=False)
    found = {}
    for item in proc.stdout.decode(errors="surrogateescape").split("\0"):
        key, _, value = item.partition("\n")
        if key:
            found[key] = value
    return found
