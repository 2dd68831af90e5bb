"""Live state that never lies: every process of a worker accounted for, read from /proc.

Each test checks processes in /proc (never the registry's word): a runner killed under a
working agent, an agent killed under its children, a forged record naming an unrelated
process, Ctrl-C in the middle of a spawn.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox, alive, paused_at, release, start_time, wait_for


def runtime(repo: GitRepo, worker_id: str) -> Path:
    return repo.path / ".git" / "workers" / worker_id


@pytest.fixture
def family(sandbox: Sandbox, repo: GitRepo) -> Path:
    """An agent that starts one child (a long sleep), notes both pids where the test finds
    them (each file whole once it is there), then waits — with no other process — until
    finish() writes to its FIFO."""
    pids = sandbox.root / "pids"
    pids.mkdir()
    path = sandbox.script("family-agent", f"""
        mkfifo "$GIT_WORKER_RUNTIME_DIR/go.fifo"
        sleep 300 &
        echo $! > {pids}/$GIT_WORKER_ID.child.new
        mv {pids}/$GIT_WORKER_ID.child.new {pids}/$GIT_WORKER_ID.child
        echo $$ > {pids}/$GIT_WORKER_ID.agent.new
        mv {pids}/$GIT_WORKER_ID.agent.new {pids}/$GIT_WORKER_ID.agent
        echo "family: started"
        read line < "$GIT_WORKER_RUNTIME_DIR/go.fifo"
        exit 0
    """)
    repo.git("config", "worker.agent", "family")
    repo.git("config", "worker.agent.family.command", str(path))
    repo.git("config", "worker.launcher", "detached")
    return pids


def pids_of(family: Path, worker_id: str) -> tuple[int, int]:
    wait_for(lambda: (family / f"{worker_id}.child").exists()
             and (family / f"{worker_id}.agent").exists())
    agent = int((family / f"{worker_id}.agent").read_text())
    child = int((family / f"{worker_id}.child").read_text())
    return agent, child


def finish(repo: GitRepo, worker_id: str) -> None:
    """Let a family agent end by itself."""
    fd = os.open(runtime(repo, worker_id) / "go.fifo", os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"go\n")
    os.close(fd)


def test_a_killed_runner_leaves_its_agent_running(repo: GitRepo, family: Path) -> None:
    """Case 1: kill -9 of the runner while the agent works. list says running, fsck
    --repair does not mark it failed, rm without --force refuses and kills nothing; once
    the agent ends, nothing is left: vanished, exit code unknown — never invented."""
    repo.ok("spawn", "w1")
    runner = repo.wait("w1", "running")["launcher"]["pid"]
    agent, child = pids_of(family, "w1")
    os.kill(runner, signal.SIGKILL)
    wait_for(lambda: not alive(runner))

    shown = repo.show("w1")
    assert shown["state"] == "running"
    assert any("its runner is gone" in p for p in shown["problems"]), shown["problems"]
    assert "w1  running" in repo.ok("list").out
    repo.worker("fsck", "--repair")
    assert repo.record("w1")["state"] == "running"
    r = repo.worker("rm", "w1")
    assert r.code == 1 and "its agent is still running" in r.err, r.err
    assert alive(agent) and alive(child)
    assert repo.refs("refs/workers/")  # nothing removed

    os.kill(child, signal.SIGKILL)
    finish(repo, "w1")  # the agent ends; no runner is there to record its exit
    wait_for(lambda: not alive(agent))
    shown = repo.wait("w1", "vanished")
    assert shown["exit_code"] is None
    assert "ended without recording an exit code" in shown["problems"][0]
    assert not (runtime(repo, "w1") / "exit").exists()
    assert "w1  vanished" in repo.ok("list").out
    r = repo.ok("fsck", "--repair")
    assert "mark it failed (exit code unknown)" in r.out
    assert repo.record("w1")["state"] == "failed" and repo.record("w1")["exit_code"] is None


def test_a_killed_runner_and_agent_leave_a_child_that_stop_ends(repo: GitRepo,
                                                              family: Path) -> None:
    """Runner and agent killed, their child lives on (ppid 1): still running, never
    vanished, until stop ends the child and says so; then nothing is shown running."""
    repo.ok("spawn", "w1")
    runner = repo.wait("w1", "running")["launcher"]["pid"]
    agent, child = pids_of(family, "w1")
    os.kill(runner, signal.SIGKILL)
    os.kill(agent, signal.SIGKILL)
    wait_for(lambda: not alive(runner) and not alive(agent))
    shown = repo.show("w1")
    assert shown["state"] == "running"
    assert f"(pid {child}) it started still run" in shown["problems"][0], shown["problems"]
    r = repo.ok("stop", "w1")
    assert r.out == ("w1: stopped (its runner was gone: the agent's exit code is unknown); "
                     f"also ended 1 process (pid {child}) it had left running\n")
    assert not alive(child)
    assert repo.show("w1")["state"] == "stopped"
    assert "running" not in repo.ok("list").out


def test_an_agent_killed_alone_leaves_children_that_stop_ends(repo: GitRepo,
                                                            family: Path) -> None:
    """Case 2: kill -9 of the agent alone. Its runner records the exit (failed 137); its
    child, left running, is ended by stop, which says so; rm refuses while it lives."""
    repo.ok("spawn", "w1")
    runner = repo.wait("w1", "running")["launcher"]["pid"]
    agent, child = pids_of(family, "w1")
    os.kill(agent, signal.SIGKILL)
    assert repo.wait("w1", "failed")["exit_code"] == 128 + signal.SIGKILL
    wait_for(lambda: not alive(runner))  # it has recorded the exit and gone
    assert alive(child)
    r = repo.worker("rm", "w1", "--keep-branch")
    assert r.code == 1 and f"(pid {child})" in r.err, r.err
    r = repo.worker("fsck")
    assert r.code == 1 and f"1 process (pid {child}) it started still run" in r.out, r.out
    r = repo.ok("stop", "w1")
    assert r.out == (f"w1: not running (failed); ended 1 process (pid {child}) "
                     "it had left running\n")
    assert not alive(child)
    assert repo.ok("stop", "w1").out == "w1: not running (failed); nothing to stop\n"
    repo.ok("fsck")


def test_stop_and_rm_force_end_the_agent_and_its_children(repo: GitRepo,
                                                          family: Path) -> None:
    repo.ok("spawn", "w1", "w2")
    repo.wait("w1", "running")
    repo.wait("w2", "running")
    one, two = pids_of(family, "w1"), pids_of(family, "w2")
    assert repo.ok("stop", "w1").out == "w1: stopped (agent exit code 143)\n"
    assert not alive(one[0]) and not alive(one[1])
    runner = repo.record("w2")["launcher"]["pid"]
    r = repo.ok("rm", "w2", "--force")
    assert r.out.startswith("removed w2 (ended 3 processes (pid ")  # runner, agent, child
    assert not any(alive(p) for p in (runner, *two))


def test_fsck_repair_ends_what_a_killed_spawn_launched(repo: GitRepo, family: Path) -> None:
    r = repo.worker("spawn", "w1",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.launch:kill"})
    assert r.code != 0
    agent, child = pids_of(family, "w1")
    assert alive(agent) and alive(child)
    r = repo.ok("fsck", "--repair")
    assert "ended 3 processes" in r.out, r.out  # runner, agent, child
    assert not alive(agent) and not alive(child)
    assert repo.refs("refs/workers/") == {}


def test_sigint_during_spawn_rolls_back_and_ends_the_agent(sandbox: Sandbox, repo: GitRepo,
                                                           family: Path) -> None:
    """Ctrl-C after the agent started: the spawn undoes everything, agent and child
    included, and exits 130."""
    before = repo.snapshot()
    proc, pid = paused_at(sandbox, repo, "spawn.launch", "spawn", "w1")
    try:
        agent, child = pids_of(family, "w1")
        assert alive(agent) and alive(child)
        # To git-worker itself (the pid the failpoint names), not to the git that runs it.
        os.kill(pid, signal.SIGINT)
        assert proc.wait(60) == 130, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not alive(agent) and not alive(child)
    assert repo.snapshot() == before


def test_a_forged_record_never_gets_an_unrelated_process_killed(sandbox: Sandbox,
                                                                repo: GitRepo,
                                                                held: Path) -> None:
    """A record (and runtime file) copied from an unrelated live process — same pid, same
    start time — does not make stop, rm --force or fsck --repair signal it."""
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1")
    runner = repo.wait("w1", "running")["launcher"]["pid"]
    release(repo, "w1")
    repo.wait("w1", "exited")
    wait_for(lambda: not alive(runner))  # done recording: the record is ours to forge
    bystander = subprocess.Popen(["sleep", "300"], cwd=sandbox.root, env=sandbox.env)
    try:
        start = start_time(bystander.pid)
        forged = {"pid": bystander.pid, "start": start, "pgid": bystander.pid,
                  "sid": bystander.pid, "host": os.uname().nodename,
                  "runner": {"pid": bystander.pid, "start": start}}
        (runtime(repo, "w1") / "agent.json").write_text(json.dumps(forged))
        (runtime(repo, "w1") / "exit").unlink()
        _forge_record(repo, "w1", state="running",
                      launcher={"kind": "detached", "pid": bystander.pid, "start": start})
        assert repo.show("w1")["state"] == "running"  # shown: the record names a live pid

        assert repo.ok("stop", "w1").out == "w1: stopped (no process of it was found)\n"
        _forge_record(repo, "w1", state="running",
                      launcher={"kind": "detached", "pid": bystander.pid, "start": start})
        repo.ok("fsck", "--repair")
        assert repo.ok("rm", "w1", "--force").out == "removed w1\n"
        assert alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()


def _forge_record(repo: GitRepo, worker_id: str, **fields: object) -> None:
    """Rewrite a record with plain git, as anyone with ref write access could."""
    record = repo.record(worker_id) | fields
    ref = f"refs/workers/{worker_id}"
    blob = repo.sandbox.run("git", "hash-object", "-w", "--stdin", cwd=repo.path,
                            input=json.dumps(record)).out.strip()
    tree = repo.sandbox.run("git", "mktree", cwd=repo.path,
                            input=f"100644 blob {blob}\tworker.json\n").out.strip()
    commit = repo.git("commit-tree", tree, "-p", ref, "-m", "forged")
    repo.git("update-ref", ref, commit)


def test_list_shows_exited_from_the_exit_file_before_the_runner_records_it(
        repo: GitRepo, held: Path) -> None:
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    (runtime(repo, "w1") / "exit").write_text("0\n")  # what the runner writes first
    rows = json.loads(repo.ok("list", "--json").out)
    assert (rows[0]["state"], rows[0]["exit_code"]) == ("exited", 0)
    assert repo.record("w1")["state"] == "running"  # the registry has not heard yet
    release(repo, "w1")


WRITER = """
import sys
sys.path.insert(0, {lib!r})
from git_worker.registry.runtime import write_atomically
for n in range(300):
    write_atomically({path!r}, (str(n % 10) * 400_000) + "\\n")
"""


def test_a_reader_never_sees_a_runtime_file_half_written(sandbox: Sandbox) -> None:
    """A writer replacing a runtime file 300 times while another process reads it: every
    read is whole (written in place, readers would see it empty or cut short)."""
    path = sandbox.root / "exit"
    path.write_text("0" * 400_000 + "\n")
    writer = subprocess.Popen([sys.executable, "-c", WRITER.format(
        lib=str(CHECKOUT / "lib"), path=str(path))])
    reads = torn = 0
    try:
        while writer.poll() is None or reads == 0:
            text = path.read_text()
            reads += 1
            torn += len(text) != 400_001 or len(set(text[:-1])) != 1
    finally:
        writer.wait(60)
    assert writer.returncode == 0
    assert reads > 0 and torn == 0, f"{torn} of {reads} reads saw a partial file"
    assert [p.name for p in sandbox.root.iterdir() if p.name.startswith("exit")] == ["exit"]


def test_a_failed_spawn_ends_what_it_launched_and_says_so(repo: GitRepo, family: Path) -> None:
    before = repo.snapshot()
    # The spawn fails once its agent has started its child: all three are there to end.
    r = repo.worker("spawn", "w1", env={"GIT_WORKER_FAILPOINTS": "spawn.launch:error",
                                        "GIT_WORKER_FAILPOINTS_AFTER": str(family / "w1.agent")})
    assert r.code == 1
    agent, child = pids_of(family, "w1")
    assert "rolled back: ended 3 processes (pid " in r.err, r.err  # runner, agent, child
    assert not alive(agent) and not alive(child)
    assert repo.snapshot() == before


def test_a_recorded_pid_now_anothers_is_not_waited_on(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A recorded pid whose start time is not the recorded one is someone else's now: not
    the worker's, and not one caught in the middle of an exec (that wait, ~90 ms, is for the
    worker's own processes, whose environment reads empty for an instant)."""
    import time

    from git_worker import worker_processes

    stranger = subprocess.Popen(["sleep", "60"], env={})  # an empty environment, as in exec
    try:
        worker = worker_processes.Worker(
            "w1", str(tmp_path), {"kind": "detached", "pid": stranger.pid,
                                  "start": start_time(stranger.pid) + 12345}, None)
        pauses: list[float] = []
        monkeypatch.setattr(time, "sleep", pauses.append)
        assert worker_processes.find(worker) == []
        assert pauses == []
    finally:
        stranger.kill()
        stranger.wait()
