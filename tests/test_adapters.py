"""The table of agent adapters: every adapter in it keeps the protocol (agents/base.py),
and everything reads that one table — a fake adapter added to it (tests/fake_adapter/, on
PYTHONPATH as a sitecustomize) is spawned, started, judged by doctor, offered by
completion and named by the errors, through real `git worker` commands.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from conftest import CHECKOUT, GitRepo, Sandbox
from git_worker import agents, installation
from git_worker.agents.base import Context, Verdict
from git_worker.agents.custom import Custom
from git_worker.agents.protocol import Adapter
from git_worker.config import SETTINGS, Config
from test_completion import ask

FAKE_ADAPTER = CHECKOUT / "tests" / "fake_adapter"


def context(repo: GitRepo, worker_id: str) -> Context:
    """The context of a worker spawned with --no-launch (a real worktree and branch)."""
    common = repo.path / ".git"
    return Context(worker_id, str(common / "workers" / worker_id), str(common),
                   str(repo.workers_dir / worker_id), f"refs/heads/worker/{worker_id}")


def version_of_unasked(argv: list[str]) -> str | None:
    raise AssertionError(f"doctor would run {argv}: it must not, for a configured command")


# --- every adapter keeps the protocol ------------------------------------------------------


@pytest.mark.parametrize("name", list(agents.TABLE))
def test_every_adapter_in_the_table_keeps_the_protocol(name: str, repo: GitRepo,
                                                       sandbox: Sandbox,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(sandbox.home))
    adapter = agents.TABLE[name]
    assert isinstance(adapter, Adapter) and adapter.name == name
    for line in (adapter.description, adapter.allows):
        assert line and "\n" not in line
    assert adapter.hook is None or adapter.hook in installation.SHIPPED

    repo.ok("spawn", "w1", "--no-launch")
    ctx = context(repo, "w1")
    own = adapter.command(None, model="model-x", ctx=ctx)
    assert "model-x" in [*own.argv, *own.env.values()]  # the model reaches the agent
    # worker.agent.<name>.command replaces the program, not the adapter's flags.
    wrapped = adapter.command(["/opt/wrapper", "--via"], model="model-x", ctx=ctx)
    assert wrapped.argv == ["/opt/wrapper", "--via", *own.argv[1:]]
    assert wrapped.operands == own.operands
    # The extra args go after the adapter's options, before what must stay last.
    repo.git("config", f"worker.agent.{name}.args", "--extra 'two words'")
    inv = agents.invocation(Config.load(str(repo.path / ".git")), name, model="model-x",
                            ctx=ctx)
    assert inv.argv == [*own.argv, "--extra", "two words", *own.operands]
    assert inv.env["GIT_WORKER_PROMPT_FILE"] == str(Path(ctx.runtime_dir) / "prompt.md")
    assert f"worker.agent.{name}.command" in str(adapter.missing_hint(own.argv[0]))

    # doctor: not installed, then a configured command only looked up, never run.
    monkeypatch.setenv("PATH", str(sandbox.root / "empty"))
    missing = adapter.health(None, version_of_unasked)
    assert missing.verdict == Verdict.MISSING and missing.fix
    assert adapter.health(["/nonexistent/agent"], version_of_unasked).verdict == Verdict.MISSING
    found = adapter.health([sys.executable, "-c", "pass"], version_of_unasked)
    assert found.verdict == Verdict.OK and adapter.allows in found.detail


def test_a_custom_agent_keeps_the_protocol(repo: GitRepo) -> None:
    repo.git("config", "worker.agent.mine.command", "my-agent --yes")
    config = Config.load(str(repo.path / ".git"))
    mine = agents.adapter(config, "mine")
    assert isinstance(mine, Adapter) and mine == Custom("mine")
    assert "mine" not in agents.TABLE  # defined in config, not in the table
    repo.ok("spawn", "w1", "--no-launch")
    inv = agents.invocation(config, "mine", model="m1", ctx=context(repo, "w1"))
    assert inv.argv == ["my-agent", "--yes"] and inv.env["GIT_WORKER_MODEL"] == "m1"
    assert inv.missing_hint is None  # the launcher's own hint: check the command


def test_the_docs_name_every_adapter_in_the_table() -> None:
    """Adding a row to the table without documenting it fails here."""
    names = list(agents.TABLE)
    man = (CHECKOUT / "lib" / "git_worker" / "man" / "git-worker.1").read_text()
    option = man.split('.BI "\\-a, \\-\\-agent " AGENT\n', 1)[1].split("or a custom agent")[0]
    assert re.findall(r"^\.BR (\S+) ,$", option, re.MULTILINE) == names
    guide = (CHECKOUT / "docs" / "agents.md").read_text()
    assert re.findall(r"^\| (\w+) \| `", guide, re.MULTILINE) == names
    doc = next(s.doc for s in SETTINGS if s.key == "worker.agent")
    assert doc == f"agent adapter: {', '.join(names)}, or custom"


# --- a fake adapter added to the table appears everywhere ---------------------------------


@pytest.fixture
def fake(sandbox: Sandbox) -> Path:
    """The fake adapter in the table of every git-worker this sandbox runs, and its program
    on PATH: records its argv, environment and stdin per worker, answers --version."""
    sandbox.env["PYTHONPATH"] = f"{FAKE_ADAPTER}:{CHECKOUT / 'lib'}"
    seen = sandbox.root / "seen"
    seen.mkdir()
    sandbox.script("fake-agent", f"""
        [ "$1" = --version ] && {{ echo "fake-agent 1.0"; exit 0; }}
        printf '%s\\n' "$@" > {seen}/$GIT_WORKER_ID.argv
        echo "$FAKE_WORKER" > {seen}/$GIT_WORKER_ID.env
        cat > {seen}/$GIT_WORKER_ID.stdin
        exit 0
    """)
    return seen


def test_spawn_runs_the_fake_adapters_argv(repo: GitRepo, fake: Path) -> None:
    repo.git("config", "worker.agent.fake.args", "--extra 1")
    repo.ok("spawn", "w1", "-a", "fake", "-m", "mini", "-d", "fix the parser")
    repo.wait("w1", "exited")
    prompt = repo.path / ".git" / "workers" / "w1" / "prompt.md"
    assert (fake / "w1.argv").read_text().splitlines() == [
        "--fake-run", "--prompt-file", str(prompt), "--model", "mini", "--extra", "1",
        "--", "go"]
    assert (fake / "w1.env").read_text() == "w1\n"
    assert "fix the parser" in (fake / "w1.stdin").read_text()
    assert repo.show("w1")["agent"] == "fake"


def test_start_uses_the_fake_adapter(repo: GitRepo, fake: Path) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    repo.ok("start", "w1", "-a", "fake")
    repo.wait("w1", "exited")
    assert (fake / "w1.argv").read_text().splitlines()[:2] == ["--fake-run", "--prompt-file"]
    repo.git("config", "worker.agent", "fake")  # the default agent, for a worker with none
    repo.ok("spawn", "w2", "--no-launch")
    repo.ok("start", "w2")
    repo.wait("w2", "exited")
    assert (fake / "w2.argv").exists()


def test_doctor_judges_the_fake_adapter(repo: GitRepo, sandbox: Sandbox, fake: Path) -> None:
    repo.git("config", "worker.agent", "fake")

    def check(env: dict[str, str] | None = None) -> dict[str, str]:
        r = repo.worker("doctor", "--json", env=env)
        found: dict[str, dict[str, str]] = {c["check"]: c for c in json.loads(r.out)}
        return found["agent fake (worker.agent)"]

    assert check() == {
        "check": "agent fake (worker.agent)", "status": "warn",
        "detail": "fake-agent 1.0; allows: only what a test's stand-in does; "
                  "cannot see a login",
        "fix": "log in once by running fake-agent interactively, or set FAKE_AGENT_TOKEN"}
    assert check({"FAKE_AGENT_TOKEN": "t"})["detail"].endswith("logged in (FAKE_AGENT_TOKEN)")
    (sandbox.bin / "fake-agent").unlink()
    gone = check()
    assert (gone["status"], gone["detail"]) == ("fail", "fake-agent is not on PATH")
    assert "install it (pip install fake-agent)" in gone["fix"]


def test_completion_offers_the_fake_adapter(repo: GitRepo, fake: Path) -> None:
    assert ask(repo, "git-worker spawn -a ") == ["aider", "claude", "codex", "fake", "gemini"]
    assert ask(repo, "git-worker start --agent f", "fish") == [
        "fake\tFake agent (fake-agent --fake-run)"]


def test_errors_name_the_fake_adapter(repo: GitRepo, sandbox: Sandbox, fake: Path) -> None:
    r = repo.worker("spawn", "w1", "-a", "nosuch")
    assert r.code == 1
    assert "unknown agent 'nosuch' (known: claude, codex, aider, gemini, fake)" in r.err
    # Its program missing: the launcher gives the adapter's own hint.
    (sandbox.bin / "fake-agent").unlink()
    r = repo.worker("spawn", "w1", "-a", "fake")
    assert r.code == 1 and "cannot start agent 'fake'" in r.err
    assert "install fake-agent (git worker doctor says how)" in r.err


def test_without_the_row_the_fake_adapter_is_unknown(repo: GitRepo, fake: Path) -> None:
    """The proof above is the table's: the same commands without the row refuse it."""
    r = repo.worker("spawn", "w1", "-a", "fake", env={"PYTHONPATH": ""})
    assert r.code == 1
    assert "unknown agent 'fake' (known: claude, codex, aider, gemini)" in r.err
    assert ask(repo, "git-worker spawn -a f", env={"PYTHONPATH": ""}) == []
