"""Agent adapters: the argv and environment each built-in adapter builds, the hooks through
which an agent reports "waiting"/"done", and worker.notify.

Stand-ins named like the real CLIs (claude, codex, aider, gemini) record their argv one
per line; tests/test_real_agents.py checks the same argv against the real programs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox, release, wait_for


def stand_in(sandbox: Sandbox, name: str, extra: str = "") -> Path:
    """A fake `name` on PATH: records argv, a few env vars and its stdin, then exits 0."""
    out = sandbox.root / f"{name}.seen"
    sandbox.script(name, f"""
        printf '%s\\n' "$@" > {out}.argv
        env | grep -E '^(CODEX_HOME|GIT_WORKER_[A-Z_]+)=' | sort > {out}.env
        cat > {out}.stdin
        {extra}
        exit 0
    """)
    return out


def argv_of(seen: Path) -> list[str]:
    return seen.with_suffix(".seen.argv").read_text().splitlines()


def test_claude_adapter_argv(repo: GitRepo, sandbox: Sandbox) -> None:
    seen = stand_in(sandbox, "claude")
    repo.git("config", "worker.agent.claude.args", "--max-budget-usd 2")
    repo.ok("spawn", "w1", "-a", "claude", "-m", "sonnet-4.5", "-d", "fix it")
    repo.wait("w1", "exited")
    settings = str(repo.path / ".git" / "workers" / "w1" / "claude-settings.json")
    assert argv_of(seen) == [
        "-p", "--permission-mode", "acceptEdits", "--allowedTools",
        "Bash(git add:*)", "Bash(git commit:*)", "Bash(git status:*)",
        "--settings", settings, "--model", "sonnet-4.5",
        "--max-budget-usd", "2"]
    assert "--dangerously-skip-permissions" not in argv_of(seen)
    assert "fix it" in seen.with_suffix(".seen.stdin").read_text()  # the prompt: on stdin
    hooks = json.loads(Path(settings).read_text())["hooks"]
    event = str(CHECKOUT / "lib" / "git_worker" / "hooks" / "claude-code" / "event")
    assert hooks["Notification"] == [{"hooks": [{"type": "command",
                                                 "command": f"{event} waiting"}]}]
    assert hooks["Stop"][0]["hooks"][0]["command"] == f"{event} done"
    # Nothing was written into the worktree: `git worker rm` sees it clean.
    assert repo.git("status", "--porcelain", "--ignored", cwd=repo.workers_dir / "w1") == ""
    repo.ok("rm", "w1")


def test_codex_adapter_gets_its_own_home(repo: GitRepo, sandbox: Sandbox) -> None:
    (sandbox.home / ".codex").mkdir()
    (sandbox.home / ".codex" / "auth.json").write_text('{"token": "x"}')
    seen = stand_in(sandbox, "codex")
    repo.ok("spawn", "w1", "-a", "codex", "-m", "gpt-5")
    repo.wait("w1", "exited")
    runtime = repo.path / ".git" / "workers" / "w1"
    notify = json.dumps([str(CHECKOUT / "lib" / "git_worker" / "hooks" / "codex" / "notify")])
    git = repo.path / ".git"
    argv = argv_of(seen)
    # Writable besides the worktree: what a commit on its own branch writes, not the whole
    # git dir (tests/test_security.py runs the real sandbox with these).
    assert argv[:11] == ["exec", "-s", "workspace-write",
                         "--add-dir", str(git / "objects"),
                         "--add-dir", str(git / "worktrees" / "w1"),
                         "--add-dir", str(git / "refs" / "heads" / "worker"),
                         "--add-dir", str(git / "logs" / "refs" / "heads" / "worker")]
    assert argv[-5:] == ["-c", f"notify={notify}", "--model", "gpt-5", "-"]
    # This repository is below /tmp, which workspace-write would make writable.
    assert "sandbox_workspace_write.exclude_slash_tmp=true" in argv
    env = seen.with_suffix(".seen.env").read_text()
    assert f"CODEX_HOME={runtime / 'codex-home'}\n" in env
    link = runtime / "codex-home" / "auth.json"
    assert link.is_symlink() and os.readlink(link) == str(sandbox.home / ".codex" / "auth.json")


def test_aider_and_gemini_argv(repo: GitRepo, sandbox: Sandbox) -> None:
    aider, gemini = stand_in(sandbox, "aider"), stand_in(sandbox, "gemini")
    repo.ok("spawn", "a1", "-a", "aider", "-m", "sonnet")
    repo.ok("spawn", "g1", "-a", "gemini")
    repo.wait("a1", "exited")
    repo.wait("g1", "exited")
    runtime = repo.path / ".git" / "workers" / "a1"
    assert argv_of(aider) == [
        "--message-file", str(runtime / "prompt.md"), "--yes-always", "--no-gitignore",
        "--no-check-update", "--no-show-release-notes", "--no-analytics",
        "--chat-history-file", str(runtime / "aider.chat.md"),
        "--input-history-file", str(runtime / "aider.input"),
        "--llm-history-file", str(runtime / "aider.llm"), "--model", "sonnet"]
    assert "GIT_WORKER_PROMPT_FILE=" in aider.with_suffix(".seen.env").read_text()
    # aider's repo-map cache must not make the worktree look dirty to `git worker rm`.
    (repo.workers_dir / "a1" / ".aider.tags.cache.v4").mkdir()
    assert repo.git("status", "--porcelain", cwd=repo.workers_dir / "a1") == ""
    assert (repo.path / ".git" / "info" / "exclude").read_text().count("/.aider*") == 1
    policy = repo.path / ".git" / "workers" / "g1" / "gemini-policy.toml"
    assert argv_of(gemini) == ["--skip-trust", "--approval-mode", "auto_edit", "--policy",
                               str(policy), "-p", "Carry out the task described above."]
    assert 'commandPrefix = ["git add", "git commit", "git status"]' \
        in policy.read_text()
    assert "You are working on task g1" in gemini.with_suffix(".seen.stdin").read_text()


def test_failed_aider_spawn_takes_its_exclude_back(repo: GitRepo, sandbox: Sandbox) -> None:
    stand_in(sandbox, "aider")
    before = (repo.path / ".git" / "info" / "exclude").read_text()
    r = repo.worker("spawn", "a1", "-a", "aider",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.launch:error"})
    assert r.code == 1 and "failpoint spawn.launch" in r.err
    assert (repo.path / ".git" / "info" / "exclude").read_text() == before


def test_unknown_agent_creates_nothing(repo: GitRepo) -> None:
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-a", "nosuch")
    assert r.code == 1
    assert "unknown agent 'nosuch' (known: claude, codex, aider, gemini)" in r.err
    assert "git config worker.agent.nosuch.command" in r.err
    assert repo.snapshot() == before


@pytest.fixture
def notify_log(sandbox: Sandbox, repo: GitRepo) -> Path:
    log = sandbox.root / "notified"
    script = sandbox.script("notify-me", f"""
        echo "$GIT_WORKER_EVENT $GIT_WORKER_ID [$GIT_WORKER_MESSAGE]" >> {log}
    """)
    repo.git("config", "worker.notify", str(script))
    return log


HOOK_RUNNER = """
import json, subprocess, sys
settings, event = sys.argv[1], sys.argv[2]
payload = {"hook_event_name": event}
if len(sys.argv) > 3:
    payload["message"] = sys.argv[3]
for group in json.load(open(settings))["hooks"][event]:
    for hook in group["hooks"]:
        subprocess.run(["sh", "-c", hook["command"]], input=json.dumps(payload).encode())
"""


def test_claude_hooks_report_waiting_and_done(repo: GitRepo, sandbox: Sandbox,
                                              notify_log: Path) -> None:
    # A stand-in claude that does what Claude Code does with --settings hooks: runs the
    # command through a shell, with the event's JSON on stdin.
    (sandbox.root / "hook.py").write_text(HOOK_RUNNER)
    stand_in(sandbox, "claude", extra=f"""
        settings=""; prev=""
        for a in "$@"; do [ "$prev" = --settings ] && settings=$a; prev=$a; done
        hook() {{ python3 {sandbox.root / "hook.py"} "$settings" "$@"; }}
        hook SessionStart
        hook Notification "Claude needs your permission to use Bash"
        while [ ! -e "$GIT_WORKER_RUNTIME_DIR/go" ]; do sleep 0.05; done
        hook PostToolUse
        hook PostToolUse
        hook Stop
    """)
    repo.ok("spawn", "w1", "-a", "claude")
    shown = repo.wait("w1", "waiting")
    assert "w1  waiting" in repo.ok("list").out
    wait_for(lambda: notify_log.exists() and "waiting" in notify_log.read_text())
    (repo.path / ".git" / "workers" / "w1" / "go").touch()
    repo.wait("w1", "exited")
    wait_for(lambda: "exited 0" in repo.ok("show", "w1", "--history").out)
    history = [line.split("  ", 2)[2] for line in
               repo.ok("show", "w1", "--history").out.split("\n\n")[1].splitlines()]
    agent_events = [e for e in history if e.startswith(("agent:", "exited"))]
    assert agent_events == [
        "exited 0", "agent: done", "agent: running",
        "agent: waiting: Claude needs your permission to use Bash", "agent: started"]
    assert "spawn: running" in history
    wait_for(lambda: len(notify_log.read_text().splitlines()) == 3)
    assert notify_log.read_text().splitlines() == [
        "waiting w1 [Claude needs your permission to use Bash]", "done w1 []",
        "exited w1 [exit code 0]"]
    assert shown["exit_code"] is None


def test_notify_on_failure(repo: GitRepo, agent, notify_log: Path) -> None:
    repo.ok("spawn", "w1", env={"AGENT_EXIT": "5"})
    repo.wait("w1", "failed")
    wait_for(lambda: notify_log.exists())
    assert notify_log.read_text() == "failed w1 [exit code 5]\n"


def test_hook_outside_git_worker_does_nothing(sandbox: Sandbox) -> None:
    r = sandbox.run(CHECKOUT / "hooks" / "claude-code" / "event", "waiting", input="{}")
    assert (r.code, r.out, r.err) == (0, "", "")


def test_codex_notify_program_records_done(repo: GitRepo, sandbox: Sandbox, held: Path,
                                           notify_log: Path) -> None:
    repo.ok("spawn", "w1")
    repo.wait("w1", "running")
    # What the runner gives the agent's environment, and what Codex passes on a turn end.
    env = {"GIT_WORKER_ID": "w1", "GIT_WORKER_COMMON_DIR": str(repo.path / ".git"),
           "GIT_WORKER_LIB": str(CHECKOUT / "lib"), "GIT_WORKER_PYTHON": sys.executable}
    turn = json.dumps({"type": "agent-turn-complete", "last-assistant-message": "All done.",
                       "input-messages": ["$(touch pwned)"]})
    r = sandbox.run(CHECKOUT / "hooks" / "codex" / "notify", turn, env=env)
    assert r.code == 0, r.err
    assert "agent: done: All done." in repo.ok("show", "w1", "--history").out
    assert repo.show("w1")["state"] == "waiting"
    wait_for(lambda: notify_log.exists())
    assert notify_log.read_text() == "done w1 [All done.]\n"
    assert not list(sandbox.root.glob("**/pwned"))
    release(repo, "w1")
    repo.wait("w1", "exited")


def test_new_settings_are_listed(repo: GitRepo) -> None:
    repo.git("config", "worker.notify", "notify-me --loud")
    rows = {r["key"]: r for r in json.loads(repo.ok("config", "--json").out)}
    assert rows["worker.notify"]["value"] == "notify-me --loud"
    assert rows["worker.trackerTimeout"]["default"] == "30"
    assert rows["worker.maxConcurrent"]["value"] is None
