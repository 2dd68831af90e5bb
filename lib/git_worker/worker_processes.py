"""The processes of one worker: recorded by the runner, found in /proc, proven, ended.

A worker's processes are its runner, its agent and whatever the agent started. They are
known by themselves, not only through the runner: the runner records the agent's pid,
start time, process group and session in the runtime file agent.json as soon as the agent
runs, so that a killed runner does not make a live agent invisible, and the agent's
children — which keep its session even when the agent is gone — can be found by scanning
/proc.

A process is ended only when it is proven to be the worker's, never on a record's word
alone (records and runtime files can be forged): it must still be the process that was
recorded (pid and start time), or be found live now, AND name this worker itself — its
environment holds GIT_WORKER_ID and GIT_WORKER_RUNTIME_DIR as the runner set them for the
agent (children inherit them), or it is the runner, whose command line names the runtime
dir. A process that cleared its environment and left the worker's session is out of reach.
"""

from __future__ import annotations

import os

from git_worker import compact_json, processes
from git_worker.processes import Stat
from git_worker.registry.runtime import RuntimeDir, write_atomically

# typing only for annotations: importing it costs ~5 ms on every list and show.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL

RUNNER_MODULE = b"git_worker.runner"


class Worker:
    """What proves a process is this worker's: its id, runtime dir and recorded launch."""

    def __init__(self, worker_id: str, runtime_dir: str, launcher: dict[str, Any],
                 host: str | None = None) -> None:
        self.id = worker_id
        self.runtime_dir = runtime_dir
        self.launcher = launcher
        self.host = host
        self._real_runtime = os.fsencode(os.path.realpath(runtime_dir))
        self._agent: dict[str, Any] | None = None

    def local(self) -> bool:
        return self.host in (None, processes.hostname())

    def agent(self) -> dict[str, Any]:
        """runtime.AGENT_JSON, read once ({} when there is none)."""
        if self._agent is None:
            self._agent = read_agent(self.runtime_dir) or {}
        return self._agent

    def recorded(self) -> list[tuple[int, int | None]]:
        """(pid, start) of the runner and the agent, as recorded (either may be forged)."""
        agent = self.agent()
        found: list[tuple[int, int | None]] = []
        for ident in (self.launcher, agent.get("runner"), agent):
            if isinstance(ident, dict) and _is_pid(ident.get("pid")):
                start = ident.get("start")
                found.append((ident["pid"], start if isinstance(start, int) else None))
        return found

    def sessions(self) -> set[int]:
        """The sessions and groups the worker's processes were started in: the runner leads
        one (setsid, or tmux's pane), the agent and its children inherit it."""
        agent = self.agent()
        ids = {pid for pid, _ in self.recorded() if pid != agent.get("pid")}
        ids.update(agent[key] for key in ("sid", "pgid") if _is_pid(agent.get(key)))
        return ids

    def proven(self, pid: int) -> bool:
        """Whether live process ``pid`` names this worker itself (see the module doc)."""
        env = processes.environ(pid)
        if env is not None and env.get(b"GIT_WORKER_ID") == os.fsencode(self.id):
            where = env.get(b"GIT_WORKER_RUNTIME_DIR")
            if where is not None and os.path.realpath(where) == self._real_runtime:
                return True
        argv = processes.cmdline(pid) or []
        if len(argv) > 5 and RUNNER_MODULE in argv[2] and argv[5] == os.fsencode(self.id):
            return os.path.realpath(argv[3]) == self._real_runtime
        return False


def _is_pid(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 1


def record_agent(runtime_dir: str, agent_pid: int, runner_pid: int) -> None:
    """Written by the runner once the agent runs (atomically: readers never see half)."""
    agent = processes.stat(agent_pid)
    runner = processes.stat(runner_pid)
    data = {
        "pid": agent_pid, "start": agent.start if agent else None,
        "pgid": agent.pgid if agent else None, "sid": agent.sid if agent else None,
        "host": processes.hostname(),
        "runner": {"pid": runner_pid, "start": runner.start if runner else None},
    }
    # compact_json, not json: this is on a launch's way (the spawner waits for the runner's
    # answer, which comes after it), and `import json` costs the runner ~3 ms (with re).
    write_atomically(RuntimeDir(runtime_dir).agent_json, compact_json.dumps(data) + "\n")


def read_agent(runtime_dir: str) -> dict[str, Any] | None:
    try:
        with open(RuntimeDir(runtime_dir).agent_json, encoding="utf-8") as f:
            data = compact_json.loads(f.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def exit_code(runtime_dir: str) -> int | None:
    try:
        with open(RuntimeDir(runtime_dir).exit, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def recorded_alive(worker: Worker) -> bool | None:
    """Cheap (no /proc scan): is the recorded runner or agent still that process?
    None when it cannot be told (another host, nothing recorded). The runner is asked
    first: while it lives, the agent's file is not even read."""
    if not worker.local():
        return None
    if runner_alive(worker):
        return True
    recorded = worker.recorded()
    if not recorded:
        return None
    return any(processes.same(pid, start) for pid, start in recorded)


def runner_alive(worker: Worker) -> bool:
    pid, start = worker.launcher.get("pid"), worker.launcher.get("start")
    if not isinstance(pid, int) or not _is_pid(pid):
        return False
    return processes.same(pid, start if isinstance(start, int) else None)


def find(worker: Worker, *, everywhere: bool = True,
         table: list[Stat] | None = None) -> list[Stat]:
    """The worker's live processes, each proven to be its own.

    Candidates: the recorded runner and agent (same pid AND start time), the live members
    of their sessions and, ``everywhere``, any process at all (for those that left the
    session with setsid but kept the environment). ``table``: a scan to reuse.
    """
    if not worker.local():
        return []
    table = processes.scan() if table is None else table
    by_pid = {s.pid: s for s in table}
    candidates: dict[int, Stat] = {}
    for pid, start in worker.recorded():
        s = by_pid.get(pid)
        if s is not None and start is not None and s.start == start:
            candidates[pid] = s
    recorded = set(candidates)  # the recorded processes still alive (a pid reused: not)
    sessions = worker.sessions()
    for s in table:
        if everywhere or s.sid in sessions or s.pgid in sessions:
            candidates.setdefault(s.pid, s)
    candidates.pop(os.getpid(), None)  # e.g. `git worker stop` run by the agent itself
    return sorted((s for s in candidates.values()
                   if worker.proven(s.pid) or _proven_after_exec(worker, s, recorded, sessions)),
                  key=lambda s: s.pid)


_EXEC_WAIT = (0.002, 0.005, 0.01, 0.02, 0.05)  # seconds, one after the other


def _proven_after_exec(worker: Worker, s: Stat, recorded: set[int],
                       sessions: set[int]) -> bool:
    """Whether a process of the worker's that could not be proven was caught in the middle
    of an exec (an agent's shell exec'ing its command, just started): the kernel shows an
    empty environment until the new program's is in place — measured in 70 of 100 execs
    of `sh -c 'exec sleep'` read in a loop. Asked again, briefly, of the recorded
    processes and the members of the worker's sessions alone (a kernel thread's environment
    is always empty)."""
    if s.pid not in recorded and s.sid not in sessions and s.pgid not in sessions:
        return False
    import time

    for pause in _EXEC_WAIT:
        if processes.environ(s.pid) != {}:
            break
        time.sleep(pause)
    return worker.proven(s.pid)


def runner_pids(worker: Worker) -> set[int]:
    return {pid for pid, _ in worker.recorded() if pid != worker.agent().get("pid")}


def leftovers(worker: Worker, *, everywhere: bool = True,
              table: list[Stat] | None = None) -> list[Stat]:
    """The worker's live processes but its runner: once the agent has ended, what it left
    running (the runner, finishing — recording the exit, starting the queue — is not)."""
    runners = runner_pids(worker)
    return [s for s in find(worker, everywhere=everywhere, table=table)
            if s.pid not in runners]


def end(worker: Worker, grace: float = STOP_GRACE, *, spare_runner: bool = False) -> list[Stat]:
    """End every process of the worker; returns those ended.

    The runner first, at once (SIGKILL): it ignores SIGTERM, and left alone it would record
    the agent's exit after the caller (rm, a rollback) has dropped the record. Then the
    agent and all it started: SIGTERM, SIGKILL after ``grace`` s. Looks again afterwards: a
    process started while the others were ending is ended too. ``spare_runner`` (stop):
    the runner stays, to record the agent's exit code itself.
    """
    import signal

    runners = runner_pids(worker)
    ended: list[Stat] = []
    for _ in range(3):
        found = find(worker)
        targets = [s for s in found if s.pid not in runners]
        if not spare_runner:
            first = [s for s in found if s.pid in runners]
            for s in first:
                if processes.same(s.pid, s.start):
                    try:
                        os.kill(s.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            ended.extend(processes.end(first, 0.0))
        if not targets:
            break
        ended.extend(processes.end(targets, grace))
    return ended


def agent_pid(worker: Worker) -> int | None:
    pid = worker.agent().get("pid")
    return pid if _is_pid(pid) else None


def orphans(worker: Worker, found: list[Stat]) -> list[Stat]:
    """The processes among ``found`` that outlived their parent: what the agent left
    running (a child of a live agent is the agent's own business)."""
    recorded = {pid for pid, _ in worker.recorded()}
    pids = {s.pid for s in found}
    return [s for s in found if s.pid not in recorded and s.ppid not in pids]


def describe(found: list[Stat]) -> str:
    pids = " ".join(str(s.pid) for s in found[:8]) + (" …" if len(found) > 8 else "")
    return f"{len(found)} process{'es' if len(found) != 1 else ''} (pid {pids})"
