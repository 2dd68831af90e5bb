"""Launchers (tmux, detached) and the live state `list`/`show` derive from them.

Every test runs against a tmux server of its own (Sandbox.tmux_dir), killed at teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import (
    GitRepo,
    Sandbox,
    alive,
    log_of,
    paused_at,
    processes_of,
    release,
    sessions,
    wait_for,
)
from git_worker import launchers

LAUNCHERS = [pytest.param("tmux", marks=pytest.mark.skipif(not shutil.which("tmux"),
                                                            reason="tmux is not installed")),
             "detached"]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_running_then_exited_zero(repo: GitRepo, held: Path, launcher: str) -> None:
    repo.git("config", "worker.launcher", launcher)
    repo.ok("spawn", "w1")
    shown = repo.wait("w1", "running")
    assert shown["launcher"]["kind"] == launcher and shown["problems"] == []
    assert "w1  running" in repo.ok("list").out
    release(repo, "w1")
    shown = repo.wait("w1", "exited")
    assert shown["exit_code"] == 0
    # Recorded too, not only derived (the runner writes the exit file first, then the record).
    wait_for(lambda: repo.record("w1")["state"] == "exited")
    assert log_of(repo, "w1") == "held: started w1\nheld: released\n"
    assert repo.ok("logs", "w1").out == "held: started w1\nheld: released\n"


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_exit_3_is_failed_with_code_3(repo: GitRepo, sandbox: Sandbox, agent,
                                      launcher: str) -> None:
    repo.git("config", "worker.launcher", launcher)
    if launcher == "tmux":
        # A server that already runs, started without AGENT_EXIT: the variable must reach
        # the agent from the spawner, not from the server's environment.
        sandbox.tmux("new-session", "-d", "-s", "unrelated", "sleep", "600")
    repo.ok("spawn", "w1", env={"AGENT_EXIT": "3"})
    shown = repo.wait("w1", "failed")
    assert shown["exit_code"] == 3
    wait_for(lambda: repo.record("w1")["exit_code"] == 3)
    assert "w1  failed (3)" in repo.ok("list").out
    assert "exited 3" in repo.ok("show", "w1", "--history").out


def test_tmux_session_is_named_for_the_worker(repo: GitRepo, sandbox: Sandbox,
                                              held: Path) -> None:
    repo.git("config", "worker.launcher", "tmux")
    repo.ok("spawn", "bd-a3f8e9.1")
    launcher = repo.wait("bd-a3f8e9.1", "running")["launcher"]
    assert launcher["session"] == "worker-bd-a3f8e9_1"  # tmux turns '.' into '_'
    assert launcher["socket"] == str(sandbox.tmux_socket)
    sessions = sandbox.tmux("list-sessions", "-F", "#{session_name}").out.split()
    assert sessions == ["worker-bd-a3f8e9_1"]
    # The pane shows the agent's output too.
    wait_for(lambda: "held: started" in sandbox.tmux(
        "capture-pane", "-p", "-t", "=worker-bd-a3f8e9_1:").out)


def test_tmux_name_taken_by_another_repository(repo: GitRepo, sandbox: Sandbox,
                                               held: Path) -> None:
    repo.git("config", "worker.launcher", "tmux")
    sandbox.tmux("new-session", "-d", "-s", "worker-w1", "sleep", "600")
    repo.ok("spawn", "w1")
    assert repo.wait("w1", "running")["launcher"]["session"] == "worker-repo-w1"


def test_tmux_uses_the_callers_server(repo: GitRepo, sandbox: Sandbox, held: Path) -> None:
    socket = sandbox.tmux_dir / "mine"
    subprocess.run(["tmux", "-S", str(socket), "new-session", "-d", "-s", "me", "sleep", "600"],
                   env=sandbox.env, check=True)
    try:
        repo.git("config", "worker.launcher", "tmux")
        repo.ok("spawn", "w1", env={"TMUX": f"{socket},1234,0"})
        assert repo.wait("w1", "running")["launcher"]["socket"] == str(socket)
        names = subprocess.run(["tmux", "-S", str(socket), "list-sessions", "-F",
                                "#{session_name}"], env=sandbox.env, capture_output=True,
                               text=True).stdout.split()
        assert sorted(names) == ["me", "worker-w1"]
        assert not sandbox.tmux_socket.exists()  # the default server was never started
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], env=sandbox.env)


def test_killed_tmux_session_is_reported_failed(repo: GitRepo, sandbox: Sandbox,
                                                held: Path) -> None:
    repo.git("config", "worker.launcher", "tmux")
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    sandbox.tmux("kill-session", "-t", "=worker-w1")
    shown = repo.wait("w1", "failed")
    assert shown["exit_code"] == 128 + signal.SIGHUP  # the agent was hung up on
    assert repo.ok("logs", "w1").out == "held: started w1\n"  # the log outlives the session


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_list_tells_a_gone_tmux_session_and_asks_tmux_once(repo: GitRepo,
                                                           sandbox: Sandbox) -> None:
    """An agent that outlives its tmux session (it ignores the hangup) still runs, and list
    says its session is gone; the sessions of every worker come from one tmux call (it
    was one `tmux has-session` per running worker)."""
    agent = sandbox.script("hangup-proof-agent", """
        trap '' HUP
        echo started
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
    """)
    repo.git("config", "worker.agent", "hangup-proof")
    repo.git("config", "worker.agent.hangup-proof.command", str(agent))
    repo.git("config", "worker.launcher", "tmux")
    repo.ok("spawn", "w1", "w2", "w3")
    for worker_id in ("w1", "w2", "w3"):
        repo.wait(worker_id, "running")
    sandbox.tmux("kill-session", "-t", "=worker-w1")
    calls = sandbox.root / "tmux-calls"
    sandbox.script("tmux", f'echo "$*" >> {calls}\nexec {shutil.which("tmux")} "$@"')
    try:
        rows = {r["id"]: r for r in json.loads(repo.ok("list", "--json").out)}
        asked = calls.read_text().splitlines()
        assert len(asked) == 1 and "list-sessions" in asked[0].split(), asked
    finally:
        (sandbox.bin / "tmux").unlink()
        for worker_id in ("w1", "w2", "w3"):
            release(repo, worker_id)
    assert {i: (r["state"], r["problems"]) for i, r in rows.items()} == {
        "w1": ("running", ["tmux session worker-w1 is gone, but the agent still runs"]),
        "w2": ("running", []),
        "w3": ("running", []),
    }


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_vanished_process_is_never_shown_running(repo: GitRepo, held: Path,
                                                 launcher: str) -> None:
    repo.git("config", "worker.launcher", launcher)
    repo.ok("spawn", "w1")
    pid = repo.wait("w1", "running")["launcher"]["pid"]
    os.killpg(pid, signal.SIGKILL)  # runner and agent at once: nobody records an exit
    shown = repo.wait("w1", "vanished")
    assert shown["exit_code"] is None
    assert "ended without recording an exit code" in shown["problems"][0]
    listed = repo.ok("list").out
    assert "w1  vanished" in listed and "running" not in listed
    assert repo.record("w1")["state"] == "running"  # the record is not rewritten by list


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_stop_ends_the_agent_and_keeps_the_work(repo: GitRepo, held: Path,
                                                launcher: str) -> None:
    repo.git("config", "worker.launcher", launcher)
    repo.ok("spawn", "w1", "w2")
    repo.wait("w1", "running")
    repo.wait("w2", "running")
    r = repo.ok("stop", "w1")
    assert r.out == "w1: stopped (agent exit code 143)\n"
    shown = repo.show("w1")
    assert shown["state"] == "stopped" and shown["exit_code"] == 143
    assert repo.record("w1")["state"] == "stopped"
    assert (repo.workers_dir / "w1").is_dir()
    assert "refs/heads/worker/w1" in repo.refs()
    assert repo.show("w2")["state"] == "running"
    assert repo.ok("stop", "--all").out == "w2: stopped (agent exit code 143)\n"
    assert repo.ok("stop", "w1").out == "w1: not running (stopped); nothing to stop\n"
    assert "stopped by user" in repo.ok("show", "w2", "--history").out
    if launcher == "tmux":
        assert repo.sandbox.tmux("list-sessions").code != 0  # no session left


def test_stop_usage(repo: GitRepo) -> None:
    assert repo.worker("stop").code == 2
    assert repo.worker("stop", "a", "--all").code == 2
    assert repo.ok("stop", "--all").out == "no running or queued workers\n"


def test_logs_tail_and_follow(repo: GitRepo, sandbox: Sandbox, held: Path) -> None:
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    wait_for(lambda: "started" in log_of(repo, "w1"))
    follower = subprocess.Popen(["git", "worker", "logs", "-f", "w1"], cwd=repo.path,
                                env=sandbox.env, stdout=subprocess.PIPE, text=True)
    release(repo, "w1")
    out, _ = follower.communicate(timeout=30)
    assert follower.returncode == 0
    assert out == "held: started w1\nheld: released\n"
    assert repo.ok("logs", "w1", "-n", "1").out == "held: released\n"
    assert repo.ok("logs", "w1", "-n", "0").out == ""


def test_logs_and_attach_without_an_agent(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    r = repo.worker("logs", "w1")
    assert r.code == 1 and "no agent has started (state ready)" in r.err
    r = repo.worker("attach", "w1")
    assert r.code == 1 and "'w1' has no agent running; there is no session" in r.err


def test_attach_detached_and_gone_sessions(repo: GitRepo, agent) -> None:
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "d1")
    r = repo.worker("attach", "d1")
    assert r.code == 1 and "'d1' runs detached (no terminal)" in r.err
    assert "git worker logs d1 -f" in r.err
    repo.git("config", "worker.launcher", "tmux")
    repo.ok("spawn", "t1")
    repo.wait("t1", "exited")
    r = repo.worker("attach", "t1")
    assert r.code == 1 and "the tmux session of 't1' is gone (state exited)" in r.err


def test_hostile_task_text_reaches_the_agent_literally(repo: GitRepo, sandbox: Sandbox) -> None:
    argv_log = sandbox.root / "argv"
    path = sandbox.script("argv-agent", f"""
        printf '%s\\n' "$#" "$@" > {argv_log}
        cat > "$GIT_WORKER_PROMPT_FILE.seen"
    """)
    repo.git("config", "worker.agent.argv.command", f"{path} --fixed")
    hostile = "$(touch pwned1) `touch pwned2`; touch pwned3 {branch} \"' \\n -rf --model x"
    repo.ok("spawn", "w1", "-a", "argv", "-d", hostile)
    repo.wait("w1", "exited")
    seen = (repo.path / ".git" / "workers" / "w1" / "prompt.md.seen").read_text()
    assert hostile in seen  # literally, braces and all ({branch} not expanded again)
    assert seen == repo.ok("prompt", "w1").out
    assert argv_log.read_text() == "1\n--fixed\n"
    for root in (repo.path, repo.workers_dir / "w1", sandbox.root):
        assert not list(root.glob("pwned*"))


def test_custom_prompt_template(repo: GitRepo, sandbox: Sandbox) -> None:
    (sandbox.root / "tpl.md").write_text("T={title} B={branch} X={unknown} json={\"a\": 1}\n"
                                         "{task_details}\n")
    repo.git("config", "worker.promptTemplate", str(sandbox.root / "tpl.md"))
    repo.ok("spawn", "w1", "-d", "the text", "--no-launch")
    assert repo.ok("prompt", "w1").out == \
        "T=w1 B=worker/w1 X={unknown} json={\"a\": 1}\nthe text\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["{", "}", "{id}", "{title}", "{nope}", "id", "x", "\n",
                                 "{{id}", "{id}}", "{Id}"]), max_size=12).map("".join),
       st.sampled_from(["", "v", "{id}", "{title}}"]))
def test_a_template_is_filled_in_as_the_regular_expression_did(text: str, value: str) -> None:
    """prompt.render scans for `{field}` (no `import re` on spawn's path): the very text
    the substitution it replaced made, each field once, braces of the values kept."""
    import re

    from git_worker import prompt

    values = {"id": value, "title": "T"}
    before = re.sub(r"\{([a-z_]+)\}",
                    lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), text)
    assert prompt.render(prompt.Template(text, "test"), values) == before


def test_missing_template_creates_nothing(repo: GitRepo) -> None:
    repo.git("config", "worker.promptTemplate", "no/such/template.md")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1")
    assert r.code == 1
    assert f"cannot read the prompt template {repo.path}/no/such/template.md" in r.err
    assert repo.snapshot() == before


def test_list_json_states(repo: GitRepo, held: Path) -> None:
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    rows = json.loads(repo.ok("list", "--json").out)
    assert [(r["id"], r["state"], r["problems"]) for r in rows] == [("w1", "running", [])]
    release(repo, "w1")
    repo.wait("w1", "exited")


@pytest.mark.skipif(not shutil.which("script") or not shutil.which("tmux"),
                    reason="needs tmux and script(1) for a terminal to attach from")
def test_attach_opens_the_session(repo: GitRepo, sandbox: Sandbox, held: Path) -> None:
    repo.git("config", "worker.launcher", "tmux")
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    # script(1) gives `git worker attach` the terminal a user would have.
    client = subprocess.Popen(["script", "-q", "-c", "git worker attach w1", "/dev/null"],
                              cwd=repo.path, env=sandbox.env, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: sandbox.tmux("list-clients", "-F", "#{session_name}").out
                 == "worker-w1\n")
        sandbox.tmux("detach-client", "-s", "=worker-w1")
        assert client.wait(timeout=20) == 0
    finally:
        client.kill()
    assert repo.show("w1")["state"] == "running"  # detaching leaves the agent running
    release(repo, "w1")
    repo.wait("w1", "exited")


@pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux")
def test_attach_without_a_terminal_says_so(repo: GitRepo, sandbox: Sandbox, held: Path) -> None:
    repo.git("config", "worker.launcher", "tmux")
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    r = repo.worker("attach", "w1")  # stdin /dev/null, stdout a pipe: as from a script or CI
    assert r.code == 1 and r.out == ""
    assert r.err == ("error: attach needs a terminal, and this is not one (standard input or "
                     "output is redirected); 'w1' runs in tmux session worker-w1\n"
                     "hint: run git worker attach w1 from a terminal; here, its output: "
                     "git worker logs w1 -f\n")
    assert sandbox.tmux("list-clients").out == ""  # nothing was attached
    assert repo.show("w1")["state"] == "running"
    release(repo, "w1")
    repo.wait("w1", "exited")


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_exit_recorded_while_a_leftover_child_holds_the_output(repo: GitRepo, sandbox: Sandbox,
                                                               launcher: str) -> None:
    child = sandbox.root / "child.pid"
    path = sandbox.script("daemonizing-agent", f"""
        echo "agent: leaving a child behind"
        sleep 300 &
        echo $! > {child}
        exit 4
    """)
    repo.git("config", "worker.launcher", launcher)
    repo.git("config", "worker.agent.d.command", str(path))
    repo.ok("spawn", "w1", "-a", "d")
    try:
        assert repo.wait("w1", "failed", timeout=60)["exit_code"] == 4  # child: 300 s
        assert "leaving a child behind" in repo.ok("logs", "w1").out
    finally:
        os.kill(int(child.read_text()), signal.SIGKILL)


# --- the runner started before the checkout -------------------------------------------------
# spawn starts the agent's runner (in tmux: its session) right after its claim, so that its
# start-up overlaps the checkout; the runner starts the agent only once spawn hands it over.

needs_tmux = pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")


def user_server(sandbox: Sandbox) -> list[str]:
    """A tmux server that runs already, a user's session on it, and remain-on-exit set for
    every window: a session whose process ends stays, unless git-worker ends it. Returns
    the sessions there are."""
    sandbox.tmux("new-session", "-d", "-s", "mine", "sleep", "600")
    sandbox.tmux("set-option", "-g", "remain-on-exit", "on")
    return ["mine"]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_the_agent_runs_in_the_worktree_from_a_runner_started_before_it(
        repo: GitRepo, sandbox: Sandbox, held: Path, launcher: str) -> None:
    repo.git("config", "worker.launcher", launcher)
    repo.ok("spawn", "w1")
    record = repo.record("w1")
    assert record["state"] == "running"  # written with the agent's pid, and the runner's
    agent, runner = record["launcher"]["agent_pid"], record["launcher"]["pid"]
    assert alive(agent) and alive(runner)
    runtime = repo.path / ".git" / "workers" / "w1"
    assert json.loads((runtime / "agent.json").read_text())["pid"] == agent
    worktree = str(repo.workers_dir / "w1")
    assert os.readlink(f"/proc/{agent}/cwd") == worktree
    environ = Path(f"/proc/{agent}/environ").read_bytes().split(b"\0")
    assert f"PWD={worktree}".encode() in environ
    if launcher == "tmux":  # what a user who attaches sees, and where a new window starts
        assert sandbox.tmux("display-message", "-p", "-t", "=worker-w1:",
                            "#{pane_current_path} #{session_path}").out == \
            f"{worktree} {worktree}\n"
    release(repo, "w1")
    repo.wait("w1", "exited")


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_spawn_stopped_before_its_agent_leaves_no_session_and_no_process(
        repo: GitRepo, sandbox: Sandbox, held: Path, launcher: str, how: str) -> None:
    """Held at its setup step (after the checkout), its runner started and waiting (in its
    tmux session): ^C rolls it all back; kill -9 leaves a runner that ends by itself (its
    handover closed with nothing said), its session with it, and fsck --repair the rest."""
    repo.git("config", "worker.launcher", launcher)
    others = user_server(sandbox) if launcher == "tmux" else []
    before = repo.snapshot()
    runtime = repo.path / ".git" / "workers" / "w1"
    proc, pid = paused_at(sandbox, repo, "spawn.setup", "spawn", "w1")
    try:
        if launcher == "tmux":
            wait_for(lambda: sessions(sandbox) == ["mine", "worker-w1"])
        wait_for(lambda: len(processes_of(runtime)) == 1)  # the runner, waiting
        runner = processes_of(runtime)[0]
        assert not (runtime / "agent.json").exists()
        os.kill(pid, getattr(signal, how))
        assert proc.wait(60) == (130 if how == "SIGINT" else 128 + signal.SIGKILL), \
            proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_for(lambda: sessions(sandbox) == others)
    wait_for(lambda: not alive(runner) and processes_of(runtime) == [])
    if how == "SIGKILL":
        assert repo.record("w1")["state"] == "spawning"
        assert "dropped the spawning record" in repo.ok("fsck", "--repair").out
    assert not (runtime / "agent.json").exists()
    after = repo.snapshot()
    # After kill -9, the worktrees' parent directory may stay, empty (see test_faults).
    assert after.pop("workers_dir") in ([], False) and before.pop("workers_dir") is False
    assert after == before
    repo.ok("spawn", "w1")  # and the id spawns again
    assert repo.record("w1")["state"] == "running"
    release(repo, "w1")
    repo.wait("w1", "exited")


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_failing_setup_after_the_runner_started_leaves_no_session_and_no_process(
        repo: GitRepo, sandbox: Sandbox, held: Path, launcher: str) -> None:
    repo.git("config", "worker.launcher", launcher)
    repo.git("config", "worker.setup", "false")
    others = user_server(sandbox) if launcher == "tmux" else []
    before = repo.snapshot()
    r = repo.worker("spawn", "w1")
    assert r.code == 1 and "setup command 'false' failed (exit 1)" in r.err
    assert sessions(sandbox) == others  # ended by the rollback, not left to the runner
    wait_for(lambda: processes_of(repo.path / ".git" / "workers" / "w1") == [])
    assert repo.snapshot() == before


@pytest.mark.parametrize("case", ["another FIFO", "closed with nothing said"])
def test_a_runner_without_its_handover_starts_nothing(sandbox: Sandbox, case: str) -> None:
    """The runner of a spawn that was killed: its FIFO closes with nothing written, or (the
    runtime dir made again by the next spawn of the id) the FIFO there is another's. It
    exits, starts nothing, and leaves another runner's handover where it is."""
    runtime = sandbox.root / "workers" / "w1"
    runtime.mkdir(parents=True)
    (runtime / "prompt.md").write_text("the task\n")
    marker = sandbox.root / "agent-ran"
    fifo = runtime / "launch.fifo"
    os.mkfifo(fifo, 0o600)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    st = os.fstat(fd)
    handover = launchers._payload(str(sandbox.root), ["touch", str(marker)], sandbox.env)
    ident = f"{st.st_dev}:{st.st_ino}"
    if case == "another FIFO":
        os.write(fd, handover)
        ident = f"{st.st_dev}:{st.st_ino + 1}"
    runner = subprocess.Popen(launchers.runner_argv(str(runtime), str(sandbox.root / "git"),
                                                    "w1", "--fifo", ident),
                              env=sandbox.env, stdin=subprocess.DEVNULL)
    try:
        if case == "closed with nothing said":
            os.close(fd)  # as the kernel does when the spawner is killed
        assert runner.wait(60) == 1
        if case == "another FIFO":
            assert os.read(fd, len(handover) + 1) == handover  # still there, whole
            os.close(fd)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert not marker.exists()
    assert not (runtime / "agent.json").exists() and not (runtime / "started").exists()


def test_a_runner_whose_spawner_is_gone_still_runs_its_agent_and_records_its_exit(
        sandbox: Sandbox) -> None:
    """The spawner killed right after its handover: nobody reads the `started` FIFO. The
    runner's answer finds no reader (it does not wait for one), the agent it started runs,
    and its exit is recorded."""
    runtime = sandbox.root / "workers" / "w1"
    runtime.mkdir(parents=True)
    (runtime / "prompt.md").write_text("the task\n")
    marker = sandbox.root / "agent-ran"
    os.mkfifo(runtime / "started", 0o600)  # as the spawner made it, and nobody reads it now
    fifo = runtime / "launch.fifo"
    os.mkfifo(fifo, 0o600)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    st = os.fstat(fd)
    os.write(fd, launchers._payload(str(sandbox.root), ["touch", str(marker)], sandbox.env))
    runner = subprocess.Popen(launchers.runner_argv(str(runtime), str(sandbox.root / "git"),
                                                    "w1", "--fifo", f"{st.st_dev}:{st.st_ino}"),
                              env=sandbox.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: marker.exists(), timeout=60)
        os.close(fd)  # the spawner's descriptors close: it is gone
        runner.wait(60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert (runtime / "exit").read_text() == "0\n"
    assert "could not answer" in (runtime / "runner.log").read_text()


@needs_tmux
def test_a_queued_spawn_closes_the_session_it_opened(repo: GitRepo, sandbox: Sandbox,
                                                     held: Path) -> None:
    """Whether a slot is free is known only after the checkout: a spawn queued then ends
    the session it opened early, and the queued worker starts in one of its own later."""
    repo.git("config", "worker.launcher", "tmux")
    repo.git("config", "worker.maxConcurrent", "1")
    repo.ok("spawn", "w1")
    repo.ok("spawn", "w2", "--queue")
    assert repo.record("w2")["state"] == "queued"
    assert sessions(sandbox) == ["worker-w1"]  # ended before spawn returned
    wait_for(lambda: processes_of(repo.path / ".git" / "workers" / "w2") == [])
    release(repo, "w1")
    repo.wait("w2", "running")
    assert "worker-w2" in sessions(sandbox)
    release(repo, "w2")
    repo.wait("w2", "exited")


@needs_tmux
def test_the_default_launcher_is_tmux_only_when_tmux_is_on_path(repo: GitRepo, sandbox: Sandbox,
                                                                agent: Path) -> None:
    """launchers looks tmux up on PATH itself (not with shutil.which, whose import a
    launched spawn would pay): without it, the default is detached, and an explicit
    worker.launcher tmux is refused before anything is made."""
    no_tmux = sandbox.root / "no-tmux"
    no_tmux.mkdir()
    for program in ("git", "python3", "sh", "cat", "basename", "echo"):
        found = shutil.which(program)
        assert found is not None
        (no_tmux / program).symlink_to(found)
    (no_tmux / "tmux").mkdir()  # a directory named tmux is not tmux
    without = {"PATH": f"{sandbox.bin}{os.pathsep}{no_tmux}"}
    repo.ok("spawn", "w1", env=without)
    assert repo.wait("w1", "exited")["launcher"]["kind"] == "detached"
    repo.ok("spawn", "w2")
    assert repo.record("w2")["launcher"]["kind"] == "tmux"
    repo.git("config", "worker.launcher", "tmux")
    r = repo.worker("spawn", "w3", env=without)
    assert r.code == 1 and "worker.launcher is tmux, but tmux is not installed" in r.err
    assert "refs/workers/w3" not in repo.git("for-each-ref", "refs/workers")
