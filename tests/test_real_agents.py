"""The adapters' argv against the real agent CLIs, installed from npm and PyPI.

Nobody is logged in (the sandbox has a HOME of its own and no API keys), so no model is
ever called: each CLI parses our arguments, then stops at authentication (claude, gemini)
or retries the network (codex, stopped after it showed it accepted everything). Then each
is pointed at a model server on loopback that answers with a script, so that its run goes
all the way: claude writes a file and commits it with the git commands it is allowed
(and is refused one it is not), aider edits and commits, codex ends its turn — and the
hooks of claude and codex tell the registry what the agent is doing.
The CLIs are installed once into a cache directory and reused; versions are pinned to the
ones checked by hand when the adapters were written — bump them here to re-check.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import GitRepo, Sandbox, log_of, processes_of, wait_for
from fake_models import (
    AnthropicMessages,
    GeminiGenerate,
    OpenAIChat,
    OpenAIResponses,
    Served,
    serve,
)

PACKAGES = {
    "claude": "@anthropic-ai/claude-code@2.1.197",
    "codex": "@openai/codex@0.171.0",
    "gemini": "@google/gemini-cli@0.61.0",
}
AIDER = "aider-chat==0.86.2"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "git-worker-tests"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),  # the first run downloads the CLIs
]
needs_npm = pytest.mark.skipif(shutil.which("npm") is None,
                               reason="npm is not installed: these agent CLIs come from npm")


def npm_bin(name: str) -> Path:
    """node_modules/.bin of a cache dir holding the pinned package (installed once)."""
    spec = PACKAGES[name]
    prefix = CACHE / spec.replace("/", "+")
    binary = prefix / "node_modules" / ".bin" / name
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:  # pytest-xdist workers install one at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit",
                            "--no-fund", "--loglevel=error", spec],
                           check=True, stdin=subprocess.DEVNULL, timeout=540)
    assert binary.exists(), f"npm installed {spec} but {binary} is missing"
    return binary.parent


def aider_bin() -> Path:
    """A directory holding only `aider`, from a virtual environment of its own in the cache
    (installed once; ~80 s and ~700 MB)."""
    prefix = CACHE / AIDER
    bin_dir = CACHE / f"{AIDER}-bin"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (bin_dir / "aider").exists():
            shutil.rmtree(prefix, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True)
            subprocess.run([str(prefix / "bin" / "python"), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", AIDER],
                           check=True, stdin=subprocess.DEVNULL, timeout=540)
            bin_dir.mkdir(exist_ok=True)
            (bin_dir / "aider").symlink_to(prefix / "bin" / "aider")
    return bin_dir


@pytest.fixture
def openai_chat() -> Iterator[Served]:
    yield from serve(OpenAIChat)


@pytest.fixture
def openai_responses() -> Iterator[Served]:
    yield from serve(OpenAIResponses)


@pytest.fixture
def anthropic_messages(repo: GitRepo) -> Iterator[Served]:
    yield from serve(AnthropicMessages, workdir=str(repo.workers_dir / "w1"))


@pytest.fixture
def gemini_generate(repo: GitRepo) -> Iterator[Served]:
    yield from serve(GeminiGenerate, workdir=str(repo.workers_dir / "w1"))


def with_cli(sandbox: Sandbox, name: str) -> dict[str, str]:
    """The sandbox environment with the CLI on PATH and no credentials at all."""
    env = {k: v for k, v in sandbox.env.items()
           if not k.startswith(("ANTHROPIC_", "CLAUDE", "OPENAI_", "CODEX_", "GEMINI_",
                                "GOOGLE_"))}
    env["PATH"] = f"{npm_bin(name)}{os.pathsep}{env['PATH']}"
    sandbox.env.clear()
    sandbox.env.update(env)  # every later `git worker` call (wait, logs…) uses it
    return env


def node_major() -> int:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    return int(out.strip().lstrip("v").split(".")[0] or 0) if out.strip() else 0


def assert_clean(repo: GitRepo, worker_id: str) -> None:
    """The agent left nothing in its worktree that would stop `git worker rm`. (Once every
    process of the worker has ended: the record says `failed` as soon as the agent has
    exited, and its runner, or a child the CLI left, may still be finishing; rm refuses
    while one runs, rightly.)"""
    status = repo.git("status", "--porcelain", "--untracked-files=all",
                      cwd=repo.workers_dir / worker_id)
    assert status == ""
    runtime = repo.path / ".git" / "workers" / worker_id
    wait_for(lambda: not processes_of(runtime), timeout=30)
    repo.ok("rm", worker_id)


def history(repo: GitRepo, worker_id: str) -> str:
    return repo.ok("show", worker_id, "--history").out


def run_to_the_end(repo: GitRepo, *spawn_args: str, timeout: float = 120) -> str:
    """Spawn w1 with ``spawn_args`` and wait until its agent has exited 0; its log."""
    repo.ok("spawn", "w1", *spawn_args)
    shown = repo.wait("w1", "exited", "failed", timeout=timeout)
    log = log_of(repo, "w1")
    assert shown["exit_code"] == 0, log
    return log


@needs_npm
def test_real_claude_accepts_our_arguments(repo: GitRepo, sandbox: Sandbox) -> None:
    with_cli(sandbox, "claude")
    repo.ok("spawn", "w1", "-a", "claude", "-m", "sonnet", "-d", "say hello")
    shown = repo.wait("w1", "failed", timeout=120)
    log = log_of(repo, "w1")
    assert shown["exit_code"] == 1, log
    assert "Not logged in" in log  # claude's own words: it got past argument parsing
    assert "unknown option" not in log and "cannot be used with root" not in log
    # Claude loaded our --settings and ran its SessionStart hook: the registry heard it.
    assert "agent: started" in history(repo, "w1")
    assert_clean(repo, "w1")


@needs_npm
def test_real_claude_commits_with_the_git_commands_it_is_allowed(
        repo: GitRepo, sandbox: Sandbox, anthropic_messages: Served) -> None:
    url, requests = anthropic_messages
    with_cli(sandbox, "claude")
    sandbox.env.update(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=url[:-len("/v1")])
    run_to_the_end(repo, "-a", "claude", "-m", "sonnet", "-d", "Add hello.txt")
    turns = [r for r in requests if r.get("tools")]  # not Claude Code's side calls
    assert "You are working on task w1" in json.dumps(turns[0])  # the prompt, on stdin
    # acceptEdits let it write; the allowlist let it add and commit, not reset or curl.
    assert repo.git("show", "worker/w1:hello.txt") == "Hello from Claude"
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "Add hello.txt"
    last = max(turns, key=lambda r: json.dumps(r).count('"tool_result"'))  # all results
    results = {block["tool_use_id"]: block for m in last["messages"]
               if isinstance(m["content"], list) for block in m["content"]
               if block.get("type") == "tool_result"}
    assert [bool(results[f"toolu_{n}"].get("is_error")) for n in range(5)] == \
        [False, False, False, True, True]
    assert "requires approval" in str(results["toolu_3"]["content"])
    # Its hooks (through --settings) told the registry it started and finished.
    events = history(repo, "w1")
    assert "agent: started" in events and "agent: done" in events
    repo.ok("merge", "w1")
    assert_clean(repo, "w1")


@needs_npm
def test_real_codex_accepts_our_arguments(repo: GitRepo, sandbox: Sandbox) -> None:
    with_cli(sandbox, "codex")
    repo.ok("spawn", "w1", "-a", "codex", "-m", "gpt-5", "-d", "say hello")
    # Offline, codex retries for minutes: wait only until it has shown it started a
    # session with our settings, then stop it.
    wait_for(lambda: "session id:" in log_of(repo, "w1")
             or repo.show("w1")["state"] != "running", timeout=120)
    repo.ok("stop", "w1")
    log = log_of(repo, "w1")
    assert "unexpected argument" not in log and "Usage:" not in log, log
    assert "sandbox: workspace-write" in log, log
    assert f"{repo.path / '.git'}" in log  # --add-dir: it may commit
    assert "model: gpt-5" in log
    assert "You are working on task w1" in log  # the prompt arrived on stdin
    home = repo.path / ".git" / "workers" / "w1" / "codex-home"
    assert (home / "installation_id").exists() or list(home.iterdir())  # CODEX_HOME used
    assert_clean(repo, "w1")


@needs_npm
def test_real_codex_finishes_its_turn_and_says_done(
        repo: GitRepo, sandbox: Sandbox, openai_responses: Served) -> None:
    url, requests = openai_responses
    with_cli(sandbox, "codex")
    sandbox.env["OPENAI_API_KEY"] = "sk-test"
    provider = f'{{name="loopback", base_url="{url}", env_key="OPENAI_API_KEY"}}'
    repo.git("config", "worker.agent.codex.args",
             f"-c 'model_providers.loopback={provider}' -c model_provider=loopback")
    log = run_to_the_end(repo, "-a", "codex", "-m", "gpt-5", "-d", "say hello")
    assert "Nothing left to do." in log
    asked = json.dumps(requests[0])
    assert "You are working on task w1" in asked and requests[0]["model"] == "gpt-5"
    # Codex ran our notify program at the end of its turn (without waiting for it: it may
    # land after the exit), and it reached the registry.
    wait_for(lambda: "agent: done: Nothing left to do." in history(repo, "w1"))
    assert_clean(repo, "w1")


@needs_npm
@pytest.mark.skipif(shutil.which("node") is None or node_major() < 20,
                    reason="the Gemini CLI needs Node.js 20 or newer")
def test_real_gemini_accepts_our_arguments(repo: GitRepo, sandbox: Sandbox) -> None:
    with_cli(sandbox, "gemini")
    repo.ok("spawn", "w1", "-a", "gemini", "-m", "gemini-2.5-pro", "-d", "say hello")
    shown = repo.wait("w1", "failed", timeout=120)
    log = log_of(repo, "w1")
    assert "Please set an Auth method" in log, log  # stopped at authentication
    assert "Unknown argument" not in log
    assert "Approval mode overridden" not in log  # --skip-trust: auto_edit really applies
    assert shown["exit_code"] == 41
    assert_clean(repo, "w1")


def test_real_aider_edits_and_commits_on_its_branch(
        repo: GitRepo, sandbox: Sandbox, openai_chat: Served) -> None:
    url, requests = openai_chat
    sandbox.env["PATH"] = f"{aider_bin()}{os.pathsep}{sandbox.env['PATH']}"
    sandbox.env.update(OPENAI_API_KEY="sk-test", OPENAI_API_BASE=url)
    # Flags of the fake model's making only: the adapter's own stay as they are.
    repo.git("config", "worker.agent.aider.args", "--edit-format whole --no-stream")
    log = run_to_the_end(repo, "-a", "aider", "-m", "openai/test-model",
                         "-d", "Add a file hello.txt that greets the reader.", timeout=240)
    assert "Applied edit to hello.txt" in log
    # The prompt reached aider (--message-file) and the model it was told to use (-m).
    asked = json.dumps(requests[0])
    assert "Add a file hello.txt that greets the reader." in asked
    assert "You are working on task w1" in asked
    assert requests[0]["model"] == "test-model"
    assert repo.git("show", "worker/w1:hello.txt") == "Hello from the model"
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "Add hello.txt"
    # Its histories are in the runtime dir and its repo-map cache is excluded: the
    # worktree is clean, so rm needs no --force (the branch is merged first: rm keeps work).
    assert (repo.path / ".git" / "workers" / "w1" / "aider.chat.md").exists()
    repo.ok("merge", "w1")
    assert_clean(repo, "w1")


@needs_npm
@pytest.mark.skipif(shutil.which("node") is None or node_major() < 20,
                    reason="the Gemini CLI needs Node.js 20 or newer")
def test_real_gemini_commits_with_the_git_commands_its_policy_allows(
        repo: GitRepo, sandbox: Sandbox, gemini_generate: Served) -> None:
    url, requests = gemini_generate
    with_cli(sandbox, "gemini")
    sandbox.env.update(GEMINI_API_KEY="test-key", GOOGLE_GEMINI_BASE_URL=url[:-len("/v1")])
    settings = sandbox.home / ".gemini" / "settings.json"  # an API key, chosen once
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"security": {"auth": {"selectedType": "gemini-api-key"}}}')
    run_to_the_end(repo, "-a", "gemini", "-m", "gemini-2.5-pro", "-d", "Add hello.txt")
    turns = [r for r in requests if r.get("tools")]
    assert "You are working on task w1" in json.dumps(turns[0])  # the prompt, on stdin
    # auto_edit let it write; our policy let it add and commit, not reset.
    assert repo.git("show", "worker/w1:hello.txt") == "Hello from Gemini"
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "Add hello.txt"
    last = max(turns, key=lambda r: json.dumps(r).count('"functionResponse"'))
    responses = [part["functionResponse"]["response"] for c in last["contents"]
                 for part in c["parts"] if "functionResponse" in part]
    assert ["error" in r for r in responses] == [False, False, False, True]
    assert "denied by policy" in responses[3]["error"]
    repo.ok("merge", "w1")
    assert_clean(repo, "w1")
