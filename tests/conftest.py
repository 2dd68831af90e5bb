"""Fixtures: real repositories in temporary directories, real git, the real CLI.

Every test gets a HOME of its own, a fixed identity, no system config and no inherited
GIT_* variables (like dulwich's test base), and runs `git worker` as a user would: a
process, found on PATH, from this checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str


class Sandbox:
    """A scratch world: HOME, a bin/ on PATH, and repositories under it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.bin = root / "bin"
        self.home.mkdir()
        self.bin.mkdir()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("GIT_", "TMUX", "BD_", "NO_COLOR"))}
        self.env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_STATE_HOME=str(self.home / ".local" / "state"),  # the lease store (leases.py)
            GIT_CONFIG_NOSYSTEM="1",
            GIT_AUTHOR_NAME="Test Author", GIT_AUTHOR_EMAIL="author@example.com",
            GIT_COMMITTER_NAME="Test Author", GIT_COMMITTER_EMAIL="author@example.com",
            PATH=f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            LANG="C.UTF-8",
        )
        # A tmux server of its own: tests never touch a user's sessions. Short path: a
        # tmux socket path must fit in 108 bytes, which pytest's tmp_path may not.
        self.tmux_dir = Path(tempfile.mkdtemp(prefix="gwt-", dir="/tmp"))
        self.env["TMUX_TMPDIR"] = str(self.tmux_dir)
        # `git worker` runs this checkout's code with this interpreter.
        self.script("git-worker", f'exec {sys.executable} {CHECKOUT / "git-worker"} "$@"')

    @property
    def tmux_socket(self) -> Path:
        return self.tmux_dir / f"tmux-{os.getuid()}" / "default"

    def tmux(self, *args: str) -> Result:
        """tmux on this sandbox's server (found through TMUX_TMPDIR, as git-worker finds it)."""
        return self.run("tmux", *args)

    def close(self) -> None:
        """End this sandbox's tmux server (and with it every session a test left)."""
        if self.tmux_socket.exists() and shutil.which("tmux"):
            self.tmux("kill-server")
        shutil.rmtree(self.tmux_dir, ignore_errors=True)

    def script(self, name: str, body: str) -> Path:
        """An executable on PATH (a stand-in agent, bd, review gate…)."""
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + textwrap.dedent(body).lstrip("\n"))
        path.chmod(0o755)
        return path

    def run(self, *argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
            input: str | None = None, timeout: float = 60) -> Result:
        proc = subprocess.run(
            [str(a) for a in argv], cwd=cwd or self.root, env={**self.env, **(env or {})},
            input=input, capture_output=True, text=True, timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


class GitRepo:
    """A repository with one commit on main, and `git worker` run inside it."""

    def __init__(self, sandbox: Sandbox, path: Path) -> None:
        self.sandbox = sandbox
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.commit("README", "hello\n", "initial commit")

    @property
    def workers_dir(self) -> Path:
        return self.path.parent / f"{self.path.name}.workers"

    def git(self, *args: str, cwd: Path | None = None, ok: bool = True) -> str:
        r = self.sandbox.run("git", *args, cwd=cwd or self.path)
        if ok:
            assert r.code == 0, f"git {' '.join(args)} failed: {r.err}"
        return r.out.rstrip("\n")

    def worker(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               input: str | None = None, timeout: float = 60) -> Result:
        return self.sandbox.run("git", "worker", *args, cwd=cwd or self.path, env=env,
                                input=input, timeout=timeout)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """`git worker ARGS` that must exit 0."""
        r = self.worker(*args, env=env)
        assert r.code == 0, f"git worker {' '.join(args)} exited {r.code}\n{r.out}\n{r.err}"
        return r

    def show(self, worker_id: str) -> dict[str, Any]:
        """The record as `git worker show --json` derives it (live state, problems)."""
        return json.loads(self.ok("show", worker_id, "--json").out)

    def wait(self, worker_id: str, *states: str, timeout: float = 60) -> dict[str, Any]:
        """Poll until the worker's live state is one of ``states``."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.show(worker_id)
            if shown["state"] in states or time.monotonic() > deadline:
                assert shown["state"] in states, shown
                return shown
            time.sleep(0.1)

    def commit(self, name: str, text: str, message: str | None = None) -> str:
        (self.path / name).parent.mkdir(parents=True, exist_ok=True)
        (self.path / name).write_text(text)
        self.git("add", name)
        self.git("commit", "-q", "-m", message or f"add {name}")
        return self.git("rev-parse", "HEAD")

    def work(self, worker_id: str, name: str, text: str | None = None,
             message: str | None = None) -> str:
        """Commit ``name`` in a worker's worktree (spawning it, --no-launch, if need be);
        returns the new tip. The quickest way to give a worker work to review or merge."""
        wt = self.workers_dir / worker_id
        if not wt.exists():
            self.ok("spawn", worker_id, "--no-launch")
        (wt / name).parent.mkdir(parents=True, exist_ok=True)
        (wt / name).write_text(f"{name}\n" if text is None else text)
        self.git("add", name, cwd=wt)
        self.git("commit", "-q", "-m", message or f"{worker_id}: {name}", cwd=wt)
        return self.git("rev-parse", "HEAD", cwd=wt)

    def refs(self, pattern: str = "refs/") -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)", pattern)
        pairs = (line.split(" ", 1) for line in out.splitlines())
        return {name: oid for name, oid in pairs}

    def worktrees(self) -> list[str]:
        out = self.git("worktree", "list", "--porcelain")
        return [ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("worktree ")]

    def record(self, worker_id: str) -> dict[str, Any]:
        """The record exactly as stored, read with plain git."""
        return json.loads(self.git("show", f"refs/workers/{worker_id}:worker.json"))

    def snapshot(self) -> dict[str, object]:
        """Everything a spawn or rm may touch: compare before/after for "nothing changed"."""
        def tree(p: Path) -> list[str]:
            return sorted(str(x.relative_to(p)) for x in p.rglob("*")) if p.exists() else []

        return {
            "refs": self.refs(),
            "worktrees": self.worktrees(),
            "admin": tree(self.path / ".git" / "worktrees"),
            "runtime": tree(self.path / ".git" / "workers"),
            "workers_dir": self.workers_dir.exists() and tree(self.workers_dir),
            "reflogs": tree(self.path / ".git" / "logs"),
            "status": self.git("status", "--porcelain"),
            "config": self.git("config", "--local", "--list"),
            "exclude": _read(self.path / ".git" / "info" / "exclude"),
        }


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # never inside a repository under test by accident
    try:
        yield box
    finally:
        os.chdir(cwd)
        box.close()
        _kill_leftovers(tmp_path)


@pytest.fixture
def repo(sandbox: Sandbox) -> GitRepo:
    return GitRepo(sandbox, sandbox.root / "repo")


class ClonedRepo(GitRepo):
    """A clone of a shared (bare) repository: one host of a team."""

    def __init__(self, sandbox: Sandbox, path: Path, url: Path) -> None:
        self.sandbox = sandbox
        self.path = path
        r = sandbox.run("git", "clone", "-q", str(url), str(path))
        assert r.code == 0, r.err


class Team:
    """A bare repository as the team's remote (`origin` of each clone), and clones of it
    with worker.remote set: each clone is a host (worker.hostName host-a, host-b…)."""

    def __init__(self, sandbox: Sandbox, seed: GitRepo, count: int) -> None:
        self.remote = sandbox.root / "team.git"
        r = sandbox.run("git", "clone", "-q", "--bare", str(seed.path), str(self.remote))
        assert r.code == 0, r.err
        self.hosts = []
        for name in "abc"[:count]:
            host = ClonedRepo(sandbox, sandbox.root / f"host-{name}", self.remote)
            host.git("config", "worker.remote", "origin")
            host.git("config", "worker.hostName", f"host-{name}")
            self.hosts.append(host)

    def refs(self, pattern: str = "refs/workers/") -> dict[str, str]:
        out = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)",
                              pattern], cwd=self.remote, capture_output=True, text=True,
                             check=True).stdout
        return dict(line.split(" ", 1) for line in out.splitlines())

    def record(self, worker_id: str) -> dict[str, Any]:
        """The record the remote holds, read with plain git."""
        out = subprocess.run(["git", "show", f"refs/workers/{worker_id}:worker.json"],
                             cwd=self.remote, capture_output=True, text=True, check=True).stdout
        return json.loads(out)


@pytest.fixture
def team(sandbox: Sandbox, repo: GitRepo) -> Team:
    """Three hosts sharing one registry through a bare remote."""
    return Team(sandbox, repo, 3)


@pytest.fixture
def agent(sandbox: Sandbox, repo: GitRepo) -> Path:
    """A stand-in agent: reads the prompt, commits a file, exits with $AGENT_EXIT (0)."""
    path = sandbox.script("stand-in-agent", """
        cat > "$GIT_WORKER_PROMPT_FILE.seen"
        echo "agent: working on $(basename "$PWD")"
        echo "$(basename "$PWD")" > work.txt
        git add work.txt && git commit -q -m "work on $(basename "$PWD")"
        echo "agent: done"
        exit "${AGENT_EXIT:-0}"
    """)
    repo.git("config", "worker.agent", "stand-in")
    repo.git("config", "worker.agent.stand-in.command", str(path))
    return path


@pytest.fixture
def held(sandbox: Sandbox, repo: GitRepo) -> Path:
    """A stand-in agent that prints, then waits until the test creates <runtime-dir>/go."""
    path = sandbox.script("held-agent", """
        echo "held: started $GIT_WORKER_ID"
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
        echo "held: released"
        exit "${AGENT_EXIT:-0}"
    """)
    repo.git("config", "worker.agent", "held")
    repo.git("config", "worker.agent.held.command", str(path))
    return path


# --- an unprivileged user (root ignores file modes) -----------------------------------------

TEST_USER = "gwtest"  # created by .ci/run


class UserRepo:
    """A repository owned by TEST_USER, and `git worker` run as that user (runuser)."""

    def __init__(self, sandbox: Sandbox, repo: GitRepo, python: str) -> None:
        self.sandbox = sandbox
        self.repo = repo
        self.path = repo.path
        site = next(p for p in sys.path if p.endswith("site-packages") and "dulwich"
                    in os.listdir(p))  # dulwich, from the suite's own environment
        sandbox.script("git-worker", f'exec {python} {CHECKOUT / "git-worker"} "$@"')
        self.env = {**sandbox.env, "PYTHONPATH": site, "USER": TEST_USER,
                    "LOGNAME": TEST_USER}
        for path in (sandbox.root, sandbox.tmux_dir):
            subprocess.run(["chown", "-R", f"{TEST_USER}:", str(path)], check=True)

    def run(self, *argv: str | Path, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> Result:
        full = {**self.env, **(env or {})}
        proc = subprocess.run(
            ["runuser", "-u", TEST_USER, "--", "env", "-i",
             *(f"{k}={v}" for k, v in full.items()), *map(str, argv)],
            cwd=cwd or self.path, capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def worker(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return self.run("git", "worker", *args, env=env)

    def git(self, *args: str) -> str:
        r = self.run("git", *args)
        assert r.code == 0, f"git {' '.join(args)} failed: {r.err}"
        return r.out.rstrip("\n")


def _user_python() -> str | None:
    """A python of this suite's version that TEST_USER can run (the suite's own may live
    under /root), or None."""
    for candidate in (sys.executable, f"/usr/bin/python{sys.version_info[0]}."
                                      f"{sys.version_info[1]}"):
        probe = subprocess.run(["runuser", "-u", TEST_USER, "--", candidate, "-c", "0"],
                               capture_output=True)
        if probe.returncode == 0:
            return candidate
    return None


@pytest.fixture
def user_repo() -> Iterator[UserRepo]:
    """A sandbox and repository owned by the unprivileged TEST_USER; tests that prove a
    permission or disk error is handled run `git worker` as that user."""
    import pwd

    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root (to run commands as the test user): run .ci/run")
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        pytest.skip(f"needs the user {TEST_USER}: .ci/run creates it (useradd -m {TEST_USER})")
    python = _user_python()
    if python is None:
        pytest.skip(f"no python {sys.version_info[0]}.{sys.version_info[1]} that "
                    f"{TEST_USER} can run")
    root = Path(tempfile.mkdtemp(prefix="gwt-user-", dir="/tmp"))
    root.chmod(0o755)  # pytest's tmp_path is under a 0700 directory of root's
    box = Sandbox(root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        yield UserRepo(box, GitRepo(box, root / "repo"), python)
    finally:
        os.chdir(cwd)
        box.close()
        _kill_leftovers(root)
        subprocess.run(["chmod", "-R", "u+rwX", str(root)], check=False)
        shutil.rmtree(root, ignore_errors=True)


def _read(path: Path) -> str | None:
    return path.read_text(errors="surrogateescape") if path.exists() else None


def release(repo: GitRepo, worker_id: str) -> None:
    (repo.path / ".git" / "workers" / worker_id / "go").touch()


def log_of(repo: GitRepo, worker_id: str) -> str:
    return (repo.path / ".git" / "workers" / worker_id / "agent.log").read_text()


def paused_at(sandbox: Sandbox, repo: GitRepo, step: str,
              *argv: str) -> tuple[subprocess.Popen[str], int]:
    """`git worker ARGV` held at failpoint ``step`` (failpoints.py's pause), and the pid of
    git-worker itself there (the one to signal: not the git that runs it)."""
    proc = subprocess.Popen(["git", "worker", *argv], cwd=repo.path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**sandbox.env, "GIT_WORKER_FAILPOINTS": f"{step}:pause"})
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith(f"failpoint {step} paused"), line
    return proc, int(line.split("(pid ")[1].rstrip(")\n"))


def _stat_fields(pid: int) -> list[bytes]:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return stat[stat.rindex(b")") + 2:].split()


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process, read from /proc (a zombie has ended: only its
    parent has not reaped it yet)."""
    try:
        return _stat_fields(pid)[0] != b"Z"
    except OSError:
        return False


def start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): with
    the pid, what git-worker records to know a process again."""
    return int(_stat_fields(pid)[19])


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _kill_leftovers(root: Path) -> None:
    """End any agent a test left running (they run in sessions of their own)."""
    if not shutil.which("pgrep"):
        return
    out = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True).stdout
    for pid in out.split():
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.kill(int(pid), 9)


def processes_of(runtime: Path) -> list[int]:
    """Live processes of the worker whose runtime dir is ``runtime``, read from /proc: its
    runner (whose command line names the runtime dir, from before any agent starts) and
    whatever runs with GIT_WORKER_RUNTIME_DIR set to it (the agent and all it starts)."""
    want = os.fsencode(runtime.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        named = any(os.path.realpath(arg) == want for arg in argv if arg.startswith(b"/"))
        named = named or any(var.startswith(b"GIT_WORKER_RUNTIME_DIR=") and os.path.realpath(
            var.split(b"=", 1)[1]) == want for var in env)
        if named:
            found.append(int(entry.name))
    return [pid for pid in found if alive(pid)]


def sessions(sandbox: Sandbox) -> list[str]:
    """The sessions on the sandbox's tmux server (none when it does not run)."""
    return sorted(sandbox.tmux("list-sessions", "-F", "#{session_name}").out.split())
