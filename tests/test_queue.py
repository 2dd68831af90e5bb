"""The queue (worker.maxConcurrent) keeps its promises: each queued worker starts with its
own spawn's environment, strictly oldest first, and a queue nothing is starting is shown
and started; racing spawns never run more agents than the limit (counted in /proc)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import GitRepo, Sandbox, log_of, paused_at, release, wait_for


@pytest.fixture
def echo_env(sandbox: Sandbox, repo: GitRepo) -> Path:
    """The held agent, saying what $FOO it got."""
    path = sandbox.script("env-agent", """
        echo "FOO=$FOO"
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
    """)
    repo.git("config", "worker.agent", "env")
    repo.git("config", "worker.agent.env.command", str(path))
    repo.git("config", "worker.launcher", "detached")
    repo.git("config", "worker.maxConcurrent", "1")
    return path


def test_a_queued_worker_starts_with_its_own_spawns_environment(repo: GitRepo,
                                                                  echo_env: Path) -> None:
    """Case 3: FOO=second spawn b --queue runs with FOO=second, not the FOO=first of the
    runner that frees the slot; the environment waits in a file only its owner can read,
    never in the registry, and is gone once the worker has started."""
    repo.ok("spawn", "a", env={"FOO": "first"})
    repo.ok("spawn", "b", "--queue", env={"FOO": "second"})
    saved = repo.path / ".git" / "workers" / "b" / "queued.env"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["FOO"] == "second"
    assert "second" not in repo.git("log", "-p", "refs/workers/b")
    release(repo, "a")
    repo.wait("b", "running")
    wait_for(lambda: "FOO=" in log_of(repo, "b"))
    assert log_of(repo, "b") == "FOO=second\n"
    assert log_of(repo, "a") == "FOO=first\n"
    assert not saved.exists()
    release(repo, "b")


def _crash(repo: GitRepo, worker_id: str) -> None:
    """Runner and agent killed at once: nobody records an exit, nobody starts the queue."""
    pid = repo.wait(worker_id, "running")["launcher"]["pid"]
    os.killpg(pid, signal.SIGKILL)
    repo.wait(worker_id, "vanished")


def test_after_a_crash_the_queue_is_shown_stalled_and_the_next_spawn_starts_it_first(
        repo: GitRepo, echo_env: Path) -> None:
    """Case 4: the running worker crashes; the queued one is a problem list and fsck show;
    a newer spawn --queue starts the oldest queued worker, not itself."""
    repo.ok("spawn", "a")
    repo.ok("spawn", "b", "--queue")
    _crash(repo, "a")
    shown = repo.show("b")
    assert shown["state"] == "queued"
    rows = {r["id"]: r for r in json.loads(repo.ok("list", "--json").out)}
    assert any("nothing is starting it" in p for p in rows["b"]["problems"]), rows["b"]
    r = repo.worker("fsck")
    assert r.code == 1 and "b: queued, but nothing is starting it" in r.out, r.out
    repo.ok("spawn", "c", "--queue")
    assert repo.wait("b", "running")
    assert repo.record("c")["state"] == "queued"
    release(repo, "b")
    repo.wait("c", "running")  # b's runner starts c
    release(repo, "c")


def test_fsck_repair_starts_a_stalled_queue(repo: GitRepo, echo_env: Path) -> None:
    repo.ok("spawn", "a")
    repo.ok("spawn", "b", "c", "--queue")
    _crash(repo, "a")
    r = repo.ok("fsck", "--repair")
    assert "repaired: b: queued, but nothing is starting it" in r.out, r.out
    assert "started b" in r.out
    assert repo.show("b")["state"] == "running"
    assert repo.record("c")["state"] == "queued"  # one slot: only the oldest
    release(repo, "b")
    repo.wait("c", "running")
    release(repo, "c")


def _agents(sandbox: Sandbox) -> dict[int, str]:
    """Held agents running now, counted in /proc (not in the registry): pid -> its worker.

    An agent is a live `sh env-agent` whose parent is not one too: the shell forks for
    each `sleep`, and until that child has exec'd it shows its parent's command line — a
    moment of the same agent, not another one. (Zombies have ended.)"""
    script = str(sandbox.bin / "env-agent").encode()
    found: dict[int, tuple[int, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        fields = state[state.rindex(b")") + 2 :].split()
        if fields[0] != b"Z" and argv[1:2] == [script]:  # sh SCRIPT
            found[int(name)] = (int(fields[1]), _worker_of(name))
    return {pid: worker for pid, (ppid, worker) in found.items() if ppid not in found}


def _worker_of(pid: str) -> str:
    """Its GIT_WORKER_ID, for the failure message ("?" when unreadable)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return "?"
    return next((e[14:].decode() for e in env if e.startswith(b"GIT_WORKER_ID=")), "?")


def _agents_alive(sandbox: Sandbox) -> int:
    return len(_agents(sandbox))


@pytest.mark.race
@pytest.mark.parametrize("queue", [False, True])
def test_racing_spawns_never_run_more_agents_than_the_limit(sandbox: Sandbox, repo: GitRepo,
                                                            echo_env: Path, queue: bool) -> None:
    repo.git("config", "worker.maxConcurrent", "2")
    ids = [f"r{n}" for n in range(6)]
    procs = [subprocess.Popen(["git", "worker", "spawn", wid, *(["--queue"] if queue else [])],
                              cwd=repo.path, env=sandbox.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for wid in ids]
    peak: dict[int, str] = {}  # the most agents seen at once
    while True:
        spawning = any(p.poll() is None for p in procs)
        now = _agents(sandbox)
        peak = now if len(now) > len(peak) else peak
        if not spawning:
            break
    codes = [p.wait(60) for p in procs]
    errors = [p.stderr.read() for p in procs if p.stderr]
    states = {wid: repo.show(wid)["state"] if wid in repo.git("for-each-ref",
              "--format=%(refname:lstrip=2)", "refs/workers/").split() else None
              for wid in ids}
    running = [w for w, s in states.items() if s == "running"]
    assert len(running) == 2 and len(peak) <= 2, (states, peak, errors)
    assert _agents_alive(sandbox) == 2
    if queue:
        assert codes == [0] * 6 and sorted(states.values(), key=str).count("queued") == 4
    else:
        assert sorted(codes) == [0, 0, 1, 1, 1, 1], codes
        assert [s for s in states.values() if s is not None] == ["running", "running"]
    repo.ok("stop", "--all")
    assert _agents_alive(sandbox) == 0


def test_a_spawn_that_launched_holds_its_slot_before_it_records_running(
        sandbox: Sandbox, repo: GitRepo, echo_env: Path) -> None:
    """Between launching its agent (and letting go of the queue lock) and recording
    `running`, a spawn's worker still counts: another spawn finds no free slot."""
    paused, pid = paused_at(sandbox, repo, "spawn.launch", "spawn", "p1")
    try:
        assert repo.record("p1")["state"] == "spawning"
        r = repo.worker("spawn", "p2")
        assert r.code == 1 and "worker.maxConcurrent is 1 and 1 worker(s) are running (p1)" \
            in r.err, r.err
        os.kill(pid, signal.SIGINT)
        assert paused.wait(60) == 130
    finally:
        if paused.poll() is None:
            paused.kill()
    assert _agents_alive(sandbox) == 0
    assert repo.refs("refs/workers/") == {}
