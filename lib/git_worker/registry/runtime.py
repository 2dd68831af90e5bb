"""A worker's runtime directory, <git-common-dir>/workers/<id>/: the files of its current
run that are not history (the registry keeps history), each by name.

Runtime files hold private text (the issue, the agent's output): the directories are 0700
and every file is created 0600, whatever the umask, so no other local user reads them.
Every file name is spelled here and nowhere else in Python (tests/test_registry.py scans
for strays). The hook scripts are shell and cannot import this: hooks/claude-code/event
tests for WAITING as "$GIT_WORKER_RUNTIME_DIR/waiting"; keep it in step.
"""

from __future__ import annotations

import os

from git_worker.errors import WorkerError

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_worker.repo import Repo

RUNTIME_ROOT = "workers"  # under the git common dir: one directory per worker
DIR_MODE = 0o700
FILE_MODE = 0o600

# The files, by name, and who writes them.
EXIT = "exit"  # the agent's exit code: the runner writes it before the registry hears
AGENT_PID = "agent.pid"  # the agent's pid (runner)
AGENT_JSON = "agent.json"  # {"pid", "start", "pgid", "sid", "host", "runner": {"pid", "start"}}
PROMPT = "prompt.md"  # what the agent reads on stdin (spawn, start, sync)
FIRST_PROMPT = "prompt.first.md"  # the prompt its spawn rendered; a restart's PROMPT adds to it
AGENT_LOG = "agent.log"  # the agent's output (runner); read by logs and watch
RUNNER_LOG = "runner.log"  # the runner's own errors
LAUNCH_FIFO = "launch.fifo"  # how a tmux launch hands its runner the invocation
STARTED = "started"  # FIFO: the runner's answer to a tmux launch, "started <pid> …" or why not
WAITING = "waiting"  # the agent's message while it waits (lifecycle); present = waiting
QUEUED_ENV = "queued.env"  # a queued worker's spawner's environment (JSON)
NOTIFY_LOG = "notify.log"  # what worker.notify printed
SETUP_LOG = "setup.log"  # worker.setup's output
REVIEW_LOG = "review.log"  # the review gate's output
LAND_LOG = "land.log"  # every gate run land made for it
TEARDOWN_LOG = "teardown.log"  # worker.teardown's output (leases)
COPIED_MANIFEST = "copied.json"  # {path in the worktree: "sha256:…" | "link:…"} (copies)
COPIED_EXCLUDE = "copied.exclude"  # the worktree's core.excludesFile (copies)
CLAUDE_SETTINGS = "claude-settings.json"  # claude --settings: its hooks and permissions
GEMINI_POLICY = "gemini-policy.toml"  # gemini's policy file
CODEX_HOME = "codex-home"  # CODEX_HOME: a directory linking the user's login and config
AIDER_CHAT = "aider.chat.md"  # aider's histories, kept out of the worktree
AIDER_INPUT = "aider.input"
AIDER_LLM = "aider.llm"
# Not a worker's: beside their directories (an id starts with a letter or digit), the
# worker.json of record commits list has read, by commit (registry/record_cache.py).
RECORD_CACHE = ".records"
# (worktrees.pin keeps a copy of the worktree's config.worktree here too, under git's own
# name for that file, worktrees.WORKTREE_CONFIG.)

# What the last run of its agent left: a start removes them first.
LAST_RUN = (EXIT, AGENT_JSON, AGENT_PID, WAITING, STARTED)


class _File:
    """A named file of a RuntimeDir: ``runtime.exit`` is the path of its EXIT file."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, runtime: RuntimeDir, owner: type[RuntimeDir]) -> str:
        return os.path.join(runtime.path, self.name)


class RuntimeDir:
    """One worker's runtime directory (the path need not exist), with its files by name."""

    __slots__ = ("path",)

    exit = _File(EXIT)
    agent_pid = _File(AGENT_PID)
    agent_json = _File(AGENT_JSON)
    prompt = _File(PROMPT)
    first_prompt = _File(FIRST_PROMPT)
    agent_log = _File(AGENT_LOG)
    runner_log = _File(RUNNER_LOG)
    launch_fifo = _File(LAUNCH_FIFO)
    started = _File(STARTED)
    waiting = _File(WAITING)
    queued_env = _File(QUEUED_ENV)
    notify_log = _File(NOTIFY_LOG)
    setup_log = _File(SETUP_LOG)
    review_log = _File(REVIEW_LOG)
    land_log = _File(LAND_LOG)
    teardown_log = _File(TEARDOWN_LOG)
    copied_manifest = _File(COPIED_MANIFEST)
    copied_exclude = _File(COPIED_EXCLUDE)
    claude_settings = _File(CLAUDE_SETTINGS)
    gemini_policy = _File(GEMINI_POLICY)
    codex_home = _File(CODEX_HOME)
    aider_chat = _File(AIDER_CHAT)
    aider_input = _File(AIDER_INPUT)
    aider_llm = _File(AIDER_LLM)

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def of(cls, repo: Repo, worker_id: str) -> RuntimeDir:
        """<git-common-dir>/workers/<id>/."""
        return cls(os.path.join(runtime_root(repo), worker_id))

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"RuntimeDir({self.path!r})"


def runtime_root(repo: Repo) -> str:
    """<git-common-dir>/workers/: every worker's runtime directory."""
    return os.path.join(repo.common_dir, RUNTIME_ROOT)


def private(path: str, flags: int) -> int:
    """An ``opener`` for open(): the file, if created, is the owner's alone (0600)."""
    return os.open(path, flags | os.O_CLOEXEC, FILE_MODE)


def write_atomically(path: str, text: str | bytes) -> None:
    """Write a runtime file (exit status, pid…) so that readers see all of it or none.

    A failure (a full disk: write() says ENOSPC without a file name) names ``path``."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb", opener=private) as f:
            f.write(text.encode() if isinstance(text, str) else text)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if e.filename is None or e.filename == tmp:
            e.filename = path
        raise


def not_a_directory(path: str) -> str | None:
    """Why ``path`` cannot serve as a runtime directory (a symlink, a file), or None when it
    is a real directory or absent. Symlinks are never followed: runtime files written
    through one would land wherever it points."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return f"{path} is a symlink (to {os.readlink(path)})"
    if not stat.S_ISDIR(mode):
        return f"{path} is not a directory"
    return None


def ensure_runtime_root(repo: Repo) -> str:
    """<git-common-dir>/workers/, created 0700 (and made 0700 if an older version left it
    open); refused when it is a symlink or a file."""
    path = runtime_root(repo)
    why = not_a_directory(path)
    if why is not None:
        raise WorkerError(f"the runtime directory {why}; git-worker does not follow it",
                          hint="run git worker fsck --repair (it moves it out of the way)")
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    st = os.stat(path)
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():  # left open by an older version
        os.chmod(path, DIR_MODE)
    return path


def make_runtime_dir(repo: Repo, worker_id: str) -> str:
    """A fresh, private <git-common-dir>/workers/<id>/ (its path).

    What a removed namesake left there is deleted first; a symlink or a file in its place
    is removed (never followed: the link goes, what it points to stays)."""
    ensure_runtime_root(repo)
    path = RuntimeDir.of(repo, worker_id).path
    if not_a_directory(path) is not None:
        os.unlink(path)
    elif os.path.isdir(path):
        import shutil  # only then: ~3 ms of every spawn before its checkout

        shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path, DIR_MODE)
    os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask
    return path



def remove_runtime_dir(path: str) -> None:
    """Delete a worker's runtime dir and what is in it, following no symlink (as
    shutil.rmtree does). Its files one by one, relative to the directory opened without
    following a link, when it holds no directory — as it does but for a launched agent's:
    shutil's import costs rm ~2.5 ms; else, and for anything but a plain directory,
    shutil.rmtree as before."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError:
        fd = None  # a symlink, or not a directory: shutil's rules
    if fd is not None:
        try:
            with os.scandir(fd) as listing:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in listing]
            if not any(is_dir for _, is_dir in entries):
                for name, _ in entries:
                    try:
                        os.unlink(name, dir_fd=fd)
                    except FileNotFoundError:
                        pass
                try:
                    os.rmdir(path)
                except OSError:
                    pass
                return
        finally:
            os.close(fd)
    import shutil

    shutil.rmtree(path, ignore_errors=True)
