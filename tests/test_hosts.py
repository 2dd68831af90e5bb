"""Hosts over OpenSSH (worker.host.<name>.*): a REAL sshd, started here on a loopback port
with its own host key and authorized_keys in a temporary directory. spawn --on, and logs,
stop and rm of that host's worker, run there; every ssh failure is named; never a prompt."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ClonedRepo, Sandbox, Team, alive, wait_for

SSHD = "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(
    not os.path.exists(SSHD) or os.geteuid() != 0,
    reason="needs openssh-server and root (to log in over ssh): run .ci/run")


class Sshd:
    def __init__(self, sandbox: Sandbox, root: Path) -> None:
        self.root = root
        root.mkdir()
        for name in ("host_key", "client_key", "stranger_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(root / name)], check=True)
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        # The session there gets the sandbox's environment (its git-worker on PATH, its
        # HOME and identity), as a host with git-worker installed would have.
        keep = ("PATH", "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "GIT_CONFIG_NOSYSTEM",
                "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL", "TMUX_TMPDIR", "LANG")
        env = {k: sandbox.env[k] for k in keep if k in sandbox.env}
        # Only the sandbox's git-worker: a test takes it away to see "git-worker missing".
        env["PATH"] = os.pathsep.join([str(sandbox.bin), *(
            d for d in sandbox.env["PATH"].split(os.pathsep)
            if d != str(sandbox.bin) and not os.path.exists(os.path.join(d, "git-worker")))])
        setenv = " ".join(f'"{k}={v}"' for k, v in env.items())
        (root / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\n"
            f"AuthorizedKeysFile {root}/authorized_keys\nPermitRootLogin prohibit-password\n"
            # Passwords offered, as many servers do: BatchMode must not ask for one.
            "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\nUsePAM no\n"
            f"StrictModes no\nPidFile {root}/sshd.pid\nSetEnv {setenv}\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
        with open(self.root / "sshd.log", "ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f",
                                          str(self.root / "sshd_config")],
                                         stdout=subprocess.DEVNULL, stderr=log)
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for(listening)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def ssh_command(self, key: str = "client_key") -> str:
        return (f"ssh -F /dev/null -i {self.root}/{key} -p {self.port} "
                f"-o UserKnownHostsFile={self.root}/known_hosts "
                "-o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes")


@pytest.fixture
def sshd(sandbox: Sandbox) -> Iterator[Sshd]:
    server = Sshd(sandbox, sandbox.root / "sshd")
    try:
        yield server
    finally:
        server.stop()


def _configure(here: ClonedRepo, there: ClonedRepo, sshd: Sshd, name: str = "host-b") -> None:
    """Host NAME is the clone there: named as its worker.hostName (list's HOST column)."""
    here.git("config", "worker.sshCommand", sshd.ssh_command())
    here.git("config", f"worker.host.{name}.ssh", "root@127.0.0.1")
    here.git("config", f"worker.host.{name}.path", str(there.path))


def test_spawn_on_a_host_runs_there_and_its_logs_stop_and_rm_too(
        team: Team, sshd: Sshd, sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    _configure(a, b, sshd)
    agent = sandbox.script("remote-agent", """
        echo "agent: hello from $(basename "$PWD")"
        echo done > work.txt
        git add work.txt && git commit -q -m "work on $(basename "$PWD")"
        exec sleep 600
    """)
    b.git("config", "worker.agent.stand-in.command", str(agent))
    b.git("config", "worker.launcher", "detached")
    r = a.ok("spawn", "w1", "--on", "host-b", "-a", "stand-in", "-d", "a task; with 'quotes'")
    assert "spawned w1" in r.out
    assert "refs/workers/w1" in b.refs()  # there, not here
    assert "refs/workers/w1" not in a.refs()
    assert b.record("w1")["clone"]["name"] == "host-b"
    assert "a task; with 'quotes'" in (b.path / ".git" / "workers" / "w1" /
                                       "prompt.md").read_text()
    shown = a.ok("list", "--fetch").out
    assert shown.splitlines()[1].split()[:3] == ["w1", "host-b", "running"]

    wait_for(lambda: "agent: hello from w1" in a.ok("logs", "w1").out)
    diff = a.ok("diff", "w1").out  # run there, shown here
    assert "+++ b/work.txt" in diff and "+done" in diff
    pid = b.record("w1")["launcher"]["agent_pid"]
    assert Path(f"/proc/{pid}").exists()
    a.ok("stop", "w1")
    wait_for(lambda: not alive(pid))
    assert b.show("w1")["state"] == "stopped"
    a.ok("start", "w1")  # started again, there
    wait_for(lambda: b.show("w1")["state"] == "running")
    pid = b.record("w1")["launcher"]["agent_pid"]
    a.ok("stop", "w1")
    wait_for(lambda: b.show("w1")["state"] == "stopped")
    a.ok("rm", "--force", "w1")
    assert "refs/workers/w1" not in b.refs()
    assert "refs/workers/w1" not in team.refs()
    # One command's calls shared one connection, closed when it ended: no socket left.
    assert not [p for p in Path("/tmp").glob("gw-ssh-*") if p.stat().st_uid == os.getuid()
                and any(p.iterdir())]


def test_every_ssh_failure_is_named_and_none_prompts(team: Team, sshd: Sshd,
                                                     sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    _configure(a, b, sshd)
    def host_line(result_out: str) -> list[str]:
        return [ln.split() for ln in result_out.splitlines() if "host host-b" in ln][0]

    def logins() -> int:
        return (sshd.root / "sshd.log").read_text().count("Accepted publickey")

    # (doctor's other checks — agents, the review gate — fail or warn in a sandbox)
    before = logins()
    assert host_line(a.worker("doctor", "--hosts").out) == [
        "ok", "host", "host-b", f"root@127.0.0.1:{b.path},", "git-worker", "0.1.0"]
    # Its two calls there (version, the clone's remote) shared one connection.
    wait_for(lambda: logins() > before)
    assert logins() == before + 1

    def spawn_on(name: str = "host-b") -> str:
        result = a.worker("spawn", "x1", "--on", name, "--no-launch", timeout=120)
        assert result.code == 1, result
        return result.err

    a.git("config", "worker.host.gone.ssh", "root@127.0.0.1")
    a.git("config", "worker.host.gone.path", str(sandbox.root / "nowhere"))
    assert (f"error: host gone (root@127.0.0.1): repository missing: "
            f"{sandbox.root / 'nowhere'} does not exist there") in spawn_on("gone")
    a.git("config", "worker.host.gone.path", str(sandbox.root))  # a directory, no repository
    assert "repository missing: " + f"{sandbox.root} is not a git repository there" in \
        spawn_on("gone")

    b.ok("spawn", "b1", "--no-launch")  # host-b's worker, seen here: logs go there
    a.ok("fetch")
    moved = sandbox.bin / "git-worker.away"
    (sandbox.bin / "git-worker").rename(moved)
    try:
        # Run here with this checkout's script directly: only the host lacks it.
        r = sandbox.run(str(moved), "spawn", "x1", "--on", "host-b", "--no-launch", cwd=a.path)
        assert r.code == 1
        assert "host host-b (root@127.0.0.1): git-worker missing: git-worker is not on the PATH " \
               "there" in r.err
        # Too old (or too new) there: the first call of a command to a host checks it.
        (sandbox.bin / "git-worker").write_text(
            f'#!/bin/sh\n[ "$1" = version ] && {{ echo "git-worker 0.0.9"; exit 0; }}\n'
            f'exec {moved} "$@"\n')
        (sandbox.bin / "git-worker").chmod(0o755)
        r = sandbox.run(str(moved), "spawn", "x1", "--on", "host-b", "--no-launch", cwd=a.path)
        assert r.code == 1
        assert ("host host-b (root@127.0.0.1): git-worker incompatible: git-worker 0.0.9 "
                "there, git-worker 0.1.0 here (major.minor must match)") in r.err
        assert "hint: install git-worker 0.1.0 on host-b" in r.err
        r = sandbox.run(str(moved), "logs", "b1", cwd=a.path)  # forwarded commands too
        assert r.code == 1
        assert "host host-b (root@127.0.0.1): git-worker incompatible: " in r.err
    finally:
        moved.rename(sandbox.bin / "git-worker")

    a.git("config", "worker.sshCommand", sshd.ssh_command("stranger_key"))
    # A key the host refuses, and a password it offers: no prompt — ssh would ask this
    # askpass program (forced), which leaves a mark if it is ever run.
    asked = sandbox.root / "askpass.asked"
    askpass = sandbox.script("askpass", f'touch {asked}; echo wrong')
    r = a.worker("spawn", "x1", "--on", "host-b", "--no-launch", timeout=120,
                 env={"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
                      "DISPLAY": ":0"})
    assert r.code == 1
    assert "host host-b (root@127.0.0.1): authentication: " in r.err
    assert "Permission denied (publickey,password,keyboard-interactive)" in r.err
    assert not asked.exists()
    a.git("config", "worker.sshCommand", sshd.ssh_command())

    sshd.stop()
    err = spawn_on()
    assert "host host-b (root@127.0.0.1): host unreachable: " in err
    assert "Connection refused" in err
    r = a.worker("doctor", "--hosts")
    assert r.code == 1
    assert host_line(r.out)[:5] == ["fail", "host", "host-b", "host", "unreachable:"]
    assert "refs/workers/x1" not in b.refs()


def _team_remote_over_ssh(team: Team, sshd: Sshd) -> None:
    """Hosts a and b reach the team's remote through the test's sshd, as `ssh://` URLs."""
    for host in team.hosts[:2]:
        host.git("config", "core.sshCommand", sshd.ssh_command())
        host.git("remote", "set-url", "origin",
                 f"ssh://root@127.0.0.1:{sshd.port}{team.remote}")


def test_a_team_remote_over_ssh_going_away_and_coming_back(team: Team, sshd: Sshd) -> None:
    a, b, _ = team.hosts
    _team_remote_over_ssh(team, sshd)
    a.ok("spawn", "w1", "--no-launch")
    assert "refs/workers/w1" in team.refs()
    sshd.stop()
    r = a.ok("spawn", "w2", "--no-launch")
    assert "warning: w2: not published: cannot reach origin (network: " in r.err
    assert "Connection refused" in r.err
    assert "refs/workers/w2" not in team.refs()
    sshd.start()
    assert a.ok("publish", "w2").out.splitlines() == ["published w2 to origin",
                                                      "pushed 1 branch(es): worker/w2"]
    assert sorted(r["id"] for r in json.loads(b.ok("list", "--fetch", "--json").out)) == \
        ["w1", "w2"]


def test_spawn_on_needs_the_base_published_and_the_work_lands_here_with_merge(
        team: Team, sshd: Sshd, sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    _configure(a, b, sshd)
    before = b.snapshot()
    # A base only here: said before anything is created there.
    a.git("branch", "feature")
    r = a.worker("spawn", "w1", "--on", "host-b", "--from", "feature", "--no-launch")
    assert r.code == 1
    assert "error: the base feature is not published on origin" in r.err
    assert "hint: push it first: git push origin feature" in r.err
    # main with a commit that origin does not have: the host would start from origin's.
    (a.path / "local.txt").write_text("only here\n")
    a.git("add", "local.txt")
    a.git("commit", "-q", "-m", "only here")
    r = a.worker("spawn", "w1", "--on", "host-b", "--no-launch")
    assert r.code == 1
    assert "error: the base main here (" in r.err and ") is not what origin has (" in r.err
    assert b.snapshot() == before

    a.git("push", "-q", "origin", "main")
    agent = sandbox.script("landing-agent", """
        echo done > work.txt
        git add work.txt && git commit -q -m "work on $(basename "$PWD")"
    """)
    b.git("config", "worker.agent.stand-in.command", str(agent))
    b.git("config", "worker.launcher", "detached")
    a.ok("spawn", "w1", "--on", "host-b", "-a", "stand-in")
    held = b.record("w1")
    assert (held["base"]["name"], held["base"]["oid"]) == \
        ("origin/main", a.git("rev-parse", "main"))  # fetched there from the team remote
    # The agent exits there; its branch is pushed; merge here fetches and lands it.
    wait_for(lambda: team.refs("refs/heads/").get("refs/heads/worker/w1")
             == b.git("rev-parse", "worker/w1") != held["base"]["oid"])
    wait_for(lambda: team.record("w1")["state"] == "exited")
    r = a.ok("merge", "w1")
    assert r.out.startswith("merged w1 into main as ")
    assert a.git("log", "-1", "--format=%s", "main") == "work on w1"
    assert a.git("rev-parse", "main") == b.git("rev-parse", "worker/w1")
    assert b.record("w1")["state"] == "exited"  # host-b's record: unchanged by the merge


def test_a_host_that_answers_nothing_is_unreachable_not_a_hang(team: Team,
                                                                sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    # A port that accepts connections and then says nothing (no ssh banner ever).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        a.git("config", "worker.sshCommand", f"ssh -F /dev/null -p {port} "
              f"-o UserKnownHostsFile={sandbox.root}/known_hosts")
        a.git("config", "worker.host.host-b.ssh", "root@127.0.0.1")
        a.git("config", "worker.host.host-b.path", str(b.path))
        a.git("config", "worker.fetchTimeout", "2")  # ssh's ConnectTimeout too
        r = a.worker("spawn", "x1", "--on", "host-b", "--no-launch", timeout=60)
    assert r.code == 1
    assert "host host-b (root@127.0.0.1): host unreachable: " in r.err
    assert "timed out" in r.err
    assert "refs/workers/x1" not in b.refs()


def test_two_hosts_racing_for_one_id_over_ssh_exactly_one_wins(team: Team, sshd: Sshd) -> None:
    a, b, _ = team.hosts
    _team_remote_over_ssh(team, sshd)
    for host in (a, b):
        host.ok("fetch")
    for n in range(3):
        worker_id = f"race-{n}"
        racers = [(h, subprocess.Popen(["git", "worker", "spawn", worker_id, "--no-launch"],
                                       cwd=h.path, env=h.sandbox.env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)) for h in (a, b)]
        done = [(h, p.wait(timeout=120), p.communicate()[1]) for h, p in racers]
        winners = [h for h, code, _ in done if code == 0]
        assert len(winners) == 1, [(code, err) for _, code, err in done]
        (loser, code, err), = [d for d in done if d[0] is not winners[0]]
        assert code == 1
        assert f"worker '{worker_id}' is taken on origin by host {winners[0].path.name} " in err
        assert f"refs/workers/{worker_id}" not in loser.refs("refs/workers/")
        assert not (loser.workers_dir / worker_id).exists()
        assert team.refs()[f"refs/workers/{worker_id}"] == \
            winners[0].refs("refs/workers/")[f"refs/workers/{worker_id}"]


def _read_until(fd: int, marker: bytes, timeout: float = 60) -> bytes:
    """What the terminal showed, until ``marker`` (or the deadline, or its end)."""
    data, deadline = b"", time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def test_attach_to_a_hosts_worker_opens_its_tmux_session_there_over_ssh_t(
        team: Team, sshd: Sshd, sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    _configure(a, b, sshd)
    agent = sandbox.script("attach-agent", """
        echo "agent: hello from $(basename "$PWD")"
        exec sleep 600
    """)
    b.git("config", "worker.agent.stand-in.command", str(agent))
    b.git("config", "worker.launcher", "tmux")
    b.ok("spawn", "w1", "-a", "stand-in")
    a.ok("fetch")
    try:
        # Without a terminal here: run there all the same, and said so from there.
        r = a.worker("attach", "w1")
        assert r.code == 1
        assert "attach needs a terminal, and this is not one" in r.err
        assert "'w1' runs in tmux session " in r.err
        # On a terminal: ssh -t, tmux attaches there, and detaching (C-b d) ends it.
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(a.path)
            os.execvpe("git", ["git", "worker", "attach", "w1"], {**sandbox.env,
                                                                  "TERM": "xterm"})
        try:
            shown = _read_until(fd, b"agent: hello from w1")
            assert b"agent: hello from w1" in shown, shown[-500:]
            # C-b d. tmux may still be reading the terminal's first answers and take a
            # key for part of one (it once printed the d): press it again until it detaches.
            for _ in range(10):
                os.write(fd, b"\x02")
                time.sleep(0.2)
                os.write(fd, b"d")
                shown += _read_until(fd, b"[detached", timeout=5)
                if b"[detached" in shown:
                    break
            assert b"[detached" in shown, shown[-500:]
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
        finally:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            os.close(fd)
    finally:
        b.ok("stop", "w1")
