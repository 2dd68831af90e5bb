"""Every step of every transaction, faulted every way (failpoints.STEPS x failpoints.ACTIONS).

- error / crash (a WorkerError / an unexpected exception at the step): the command exits
  1 / 3 and everything is exactly as before: refs, branches, worktrees, directories,
  reflogs, local config, info/exclude — and the bd issue.
- kill (SIGKILL at the step): `git worker fsck --repair` brings back a consistent state
  (bd issue included), `git fsck` is clean, and the same id works again.
- start: the agent it launched is ended too (checked in /proc).

The spawn runs the whole way: a bd issue (a stand-in bd that keeps state), the aider
adapter (which edits info/exclude) as an idle agent, a setup command, with each launcher,
detached and tmux — whose runner (and session) spawn starts right after its claim, to
wait for the agent: after every fault no session and no process of the worker is left
(read in `tmux ls` and /proc).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox, alive, processes_of, sessions, wait_for
from git_worker import failpoints

EXIT = {"error": 1, "crash": 3, "kill": 137}  # 137: git's "died of signal 9"
SPAWN = [s for s in failpoints.STEPS if s.startswith("spawn.")]
RM = [s for s in failpoints.STEPS if s.startswith("rm.")]
MERGE = [s for s in failpoints.STEPS if s.startswith("merge.")]
START = [s for s in failpoints.STEPS if s.startswith("start.")]
LAUNCHERS = ["detached", pytest.param("tmux", marks=pytest.mark.skipif(
    not shutil.which("tmux"), reason="tmux is not installed"))]

BD = '''
import json, os, sys
state = os.environ["BD_STATE"]
issue = json.load(open(state))
args = sys.argv[1:]
if args[0] == "show":
    print(json.dumps([issue]))
elif args[0] == "update":
    if "--claim" in args:
        if issue["status"] == "in_progress":
            sys.exit("already claimed by " + issue["assignee"])
        issue.update(status="in_progress", assignee=os.environ.get("BD_ACTOR", "me"))
    else:
        issue.update(status=args[args.index("--status") + 1],
                     assignee=args[args.index("--assignee") + 1])
    json.dump(issue, open(state, "w"))
    print(json.dumps([issue]))
else:
    sys.exit("unexpected bd call: " + " ".join(args))
'''


def test_the_list_of_steps_is_every_failpoint_in_the_code() -> None:
    called = set()
    for path in (CHECKOUT / "lib" / "git_worker").rglob("*.py"):
        called.update(re.findall(r'failpoints\.hit\("([^"]+)"\)', path.read_text()))
    assert called == set(failpoints.STEPS)


@pytest.fixture
def full_spawn(sandbox: Sandbox, repo: GitRepo) -> Path:
    """bd with issue t-1 (open, unassigned), aider as an idle agent, a setup command, a
    worker.copy file (copied, and excluded in the worktree through its config.worktree)."""
    state = sandbox.root / "bd-issue.json"
    state.write_text(json.dumps({"id": "t-1", "title": "the task", "status": "open",
                                 "assignee": ""}))
    (sandbox.root / "bd.py").write_text(BD)
    sandbox.script("bd", f'exec {sys.executable} {sandbox.root / "bd.py"} "$@"')
    sandbox.script("aider", "exec sleep 30\n")
    sandbox.env.update(BD_STATE=str(state), BD_ACTOR="me")
    repo.git("config", "worker.tracker", "bd")
    repo.git("config", "worker.agent", "aider")
    repo.git("config", "worker.launcher", "detached")
    repo.git("config", "--add", "worker.setup", "git status --short")
    (repo.path / ".env").write_text("SECRET=1\n")
    repo.git("config", "--add", "worker.copy", ".env")
    return state


@pytest.mark.parametrize("launcher", LAUNCHERS)
@pytest.mark.parametrize("action", failpoints.ACTIONS)
@pytest.mark.parametrize("step", SPAWN)
def test_spawn_fault(sandbox: Sandbox, repo: GitRepo, full_spawn: Path, step: str,
                     action: str, launcher: str) -> None:
    repo.git("config", "worker.launcher", launcher)
    runtime = repo.path / ".git" / "workers" / "t-1"

    def nothing_runs() -> bool:
        return sessions(sandbox) == [] and processes_of(runtime) == []

    before, issue = repo.snapshot(), full_spawn.read_text()
    r = repo.worker("spawn", "t-1", env={"GIT_WORKER_FAILPOINTS": f"{step}:{action}"})
    assert r.code == EXIT[action], r.err
    if action != "kill":
        assert f"failpoint {step}" in r.err
        assert repo.snapshot() == before
        assert full_spawn.read_text() == issue
        wait_for(nothing_runs)
        return
    assert repo.record("t-1")["state"] == "spawning"
    assert any("spawn was interrupted" in p for p in repo.show("t-1")["problems"])
    if step != "spawn.launch":  # no agent yet: a runner waiting for one ends by itself
        wait_for(nothing_runs)
    fsck = repo.worker("fsck", "--repair")
    assert fsck.code == 0, fsck.out + fsck.err
    assert "dropped the spawning record" in fsck.out
    wait_for(nothing_runs)
    assert json.loads(full_spawn.read_text())["status"] == "open"  # the claim given back
    after = repo.snapshot()
    assert {k: after[k] for k in ("refs", "worktrees", "admin", "runtime")} == \
        {k: before[k] for k in ("refs", "worktrees", "admin", "runtime")}
    # The worktrees' parent directory may stay, empty: the record cannot tell whether the
    # dead spawn made it, and another spawn may be about to use it.
    assert after["workers_dir"] in ([], False)
    assert repo.ok("fsck").out == "ok: registry, branches and worktrees agree\n"
    repo.git("fsck", "--no-progress")
    repo.ok("spawn", "t-1")
    assert json.loads(full_spawn.read_text())["status"] == "in_progress"
    repo.ok("rm", "--force", "t-1")


@pytest.mark.parametrize("action", failpoints.ACTIONS)
@pytest.mark.parametrize("step", RM)
def test_rm_fault(repo: GitRepo, step: str, action: str) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    before = repo.snapshot()
    r = repo.worker("rm", "w1", env={"GIT_WORKER_FAILPOINTS": f"{step}:{action}"})
    assert r.code == EXIT[action], r.err
    if action != "kill":
        assert f"failpoint {step}" in r.err
        assert repo.snapshot() == before
        repo.ok("fsck")
        return
    assert any("rm was interrupted" in p for p in repo.show("w1")["problems"])
    repo.ok("fsck", "--repair")
    assert repo.ok("fsck").out == "ok: registry, branches and worktrees agree\n"
    assert repo.refs("refs/workers/") == {}
    assert "refs/heads/worker/w1" not in repo.refs()
    assert not (repo.workers_dir / "w1").exists()
    repo.git("fsck", "--no-progress")
    repo.ok("spawn", "w1", "--no-launch")


@pytest.mark.parametrize("action", failpoints.ACTIONS)
@pytest.mark.parametrize("step", START)
def test_start_fault(sandbox: Sandbox, repo: GitRepo, step: str, action: str) -> None:
    """A start faulted after its agent was launched: error/crash leave the worker exactly
    as it was, its agent ended; after kill, fsck --repair ends the agent and gives the
    worker back its state."""
    pids = sandbox.root / "agent.pid"
    idle = sandbox.script("idle-agent", f"echo $$ > {pids}\nexec sleep 300\n")
    repo.git("config", "worker.agent.idle.command", str(idle))
    repo.git("config", "worker.agent", "idle")
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1", "--no-launch")
    before, record = repo.snapshot(), repo.record("w1")
    r = repo.worker("start", "w1", env={"GIT_WORKER_FAILPOINTS": f"{step}:{action}"})
    assert r.code == EXIT[action], r.err
    if action != "kill":
        assert f"failpoint {step}" in r.err
        assert repo.snapshot() == before and repo.record("w1") == record
        # from /proc, not the agent's pid file: it may have been ended before writing it;
        # its runner too
        assert processes_of(repo.path / ".git" / "workers" / "w1") == []
        repo.ok("fsck")
    else:
        # the agent was launched: it writes its pid file in its own time
        wait_for(lambda: pids.exists() and pids.read_text().endswith("\n"))
        agent = int(pids.read_text())
        assert alive(agent)
        assert any("start was interrupted" in p for p in repo.show("w1")["problems"])
        fsck = repo.ok("fsck", "--repair")
        assert "gave it back its state (ready)" in fsck.out, fsck.out
        assert not alive(agent)
        assert repo.ok("fsck").out == "ok: registry, branches and worktrees agree\n"
        assert repo.show("w1")["state"] == "ready"
    assert repo.ok("start", "w1").out == "started w1 [running]\n"
    repo.ok("stop", "w1")


@pytest.mark.parametrize("action", failpoints.ACTIONS)
@pytest.mark.parametrize("step", MERGE)
def test_merge_fault(repo: GitRepo, step: str, action: str) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    wt = repo.workers_dir / "w1"
    (wt / "feature.txt").write_text("new\n")
    repo.git("add", "feature.txt", cwd=wt)
    repo.git("commit", "-q", "-m", "feature", cwd=wt)
    repo.commit("other.txt", "other\n")  # a real merge commit, not a fast-forward
    before = repo.snapshot()
    r = repo.worker("merge", "w1", env={"GIT_WORKER_FAILPOINTS": f"{step}:{action}"})
    assert r.code == EXIT[action], r.err
    assert repo.record("w1")["state"] == "ready"
    if step == "merge.compute":  # before the target moves: nothing changed at all
        assert repo.snapshot() == before
    else:  # after: landed, the record lags behind
        assert repo.git("log", "-1", "--format=%s", "main") == \
            "Merge branch 'worker/w1' into main"
        assert repo.git("status", "--porcelain") == ""
    landed = repo.git("rev-parse", "main") if step == "merge.record" else None
    repo.ok("merge", "w1")  # finishes the job; never merges twice
    if landed:
        assert repo.git("rev-parse", "main") == landed
    assert repo.git("rev-list", "--count", "--merges", "main") == "1"
    assert repo.record("w1")["state"] == "merged"
    repo.ok("fsck")
    repo.git("fsck", "--no-progress")
