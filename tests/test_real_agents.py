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
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import GitRepo, Sandbox, log_of, wait_for

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


class FakeModel(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint: asked for an edit, it writes hello.txt whole;
    asked for a commit message (aider's second call), it gives one."""

    requests: list[dict[str, object]]

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        system = str(body["messages"][0].get("content", "")).lower()
        text = ("Add hello.txt" if "commit message" in system
                else "hello.txt\n```\nHello from the model\n```\n")
        data = json.dumps({
            "id": "1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class FakeResponses(BaseHTTPRequestHandler):
    """The Responses API as codex streams it (server-sent events): one short answer."""

    protocol_version = "HTTP/1.1"
    requests: list[dict[str, object]]

    def do_POST(self) -> None:  # noqa: N802
        self.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
        message = {"type": "message", "role": "assistant", "id": "msg_1",
                   "content": [{"type": "output_text", "text": "Nothing left to do."}]}
        data = b"".join(
            f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()
            for kind, fields in (
                ("response.created", {"response": {"id": "resp_1"}}),
                ("response.output_item.done", {"item": message}),
                ("response.completed", {"response": {"id": "resp_1", "usage": usage}})))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def serve(kind: type[BaseHTTPRequestHandler], **attributes: str
          ) -> Iterator[tuple[str, list[dict[str, object]]]]:
    """(base URL, the requests it received) of a server of ``kind`` on loopback."""
    requests: list[dict[str, object]] = []
    handler = type("Handler", (kind,), {"requests": requests, **attributes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    server.shutdown()
    server.server_close()


class FakeClaude(BaseHTTPRequestHandler):
    """Anthropic's Messages API as Claude Code streams it, playing a script of tool calls:
    one per tool result so far, then "Done.". Requests without tools (Claude Code's side
    calls) get "Done." at once."""

    protocol_version = "HTTP/1.1"
    requests: list[dict[str, object]]
    workdir = ""  # the worktree, for the Write tool's absolute path

    def script(self) -> list[tuple[str, dict[str, str]]]:
        return [("Write", {"file_path": f"{self.workdir}/hello.txt",
                           "content": "Hello from Claude\n"}),
                ("Bash", {"command": "git add hello.txt", "description": "stage"}),
                ("Bash", {"command": "git commit -m 'Add hello.txt'", "description": "commit"}),
                ("Bash", {"command": "git reset --hard HEAD~1", "description": "undo"}),
                ("Bash", {"command": "curl -s http://127.0.0.1:9/", "description": "fetch"})]

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        done = json.dumps(body["messages"]).count('"tool_result"')
        script = self.script() if body.get("tools") else []
        if done < len(script):
            name, args = script[done]
            block = {"type": "tool_use", "id": f"toolu_{done}", "name": name, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(args)}
            stop = "tool_use"
        else:
            block, delta, stop = ({"type": "text", "text": ""},
                                  {"type": "text_delta", "text": "Done."}, "end_turn")
        message = {"id": "msg_1", "type": "message", "role": "assistant",
                   "model": body["model"], "content": [], "stop_reason": None,
                   "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
        events = [("message_start", {"message": message}),
                  ("content_block_start", {"index": 0, "content_block": block}),
                  ("content_block_delta", {"index": 0, "delta": delta}),
                  ("content_block_stop", {"index": 0}),
                  ("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": 1}}),
                  ("message_stop", {})]
        data = b"".join(f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n"
                        .encode() for kind, fields in events)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class FakeGemini(BaseHTTPRequestHandler):
    """The Gemini API's streamGenerateContent (server-sent events), playing a script of
    function calls: one per function response so far, then "Done."."""

    protocol_version = "HTTP/1.1"
    requests: list[dict[str, object]]
    workdir = ""

    def script(self) -> list[tuple[str, dict[str, str]]]:
        return [("write_file", {"file_path": f"{self.workdir}/hello.txt",
                                "content": "Hello from Gemini\n"}),
                ("run_shell_command", {"command": "git add hello.txt"}),
                ("run_shell_command", {"command": "git commit -m 'Add hello.txt'"}),
                ("run_shell_command", {"command": "git reset --hard HEAD~1"})]

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        done = json.dumps(body["contents"]).count('"functionResponse"')
        script = self.script() if body.get("tools") else []
        part: dict[str, object] = {"text": "Done."}
        if done < len(script):
            part = {"functionCall": {"name": script[done][0], "args": script[done][1]}}
        chunk = {"candidates": [{"content": {"role": "model", "parts": [part]},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1,
                                   "totalTokenCount": 2}}
        data = f"data: {json.dumps(chunk)}\r\n\r\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_model() -> Iterator[tuple[str, list[dict[str, object]]]]:
    yield from serve(FakeModel)


@pytest.fixture
def fake_claude(repo: GitRepo) -> Iterator[tuple[str, list[dict[str, object]]]]:
    yield from serve(FakeClaude, workdir=str(repo.workers_dir / "w1"))


@pytest.fixture
def fake_gemini(repo: GitRepo) -> Iterator[tuple[str, list[dict[str, object]]]]:
    yield from serve(FakeGemini, workdir=str(repo.workers_dir / "w1"))


@pytest.fixture
def fake_responses() -> Iterator[tuple[str, list[dict[str, object]]]]:
    yield from serve(FakeResponses)


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
    """The agent left nothing in its worktree that would stop `git worker rm`."""
    status = repo.git("status", "--porcelain", "--untracked-files=all",
                      cwd=repo.workers_dir / worker_id)
    assert status == ""
    repo.ok("rm", worker_id)


def history(repo: GitRepo, worker_id: str) -> str:
    return repo.ok("show", worker_id, "--history").out


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
        repo: GitRepo, sandbox: Sandbox,
        fake_claude: tuple[str, list[dict[str, object]]]) -> None:
    url, requests = fake_claude
    with_cli(sandbox, "claude")
    sandbox.env.update(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=url[:-len("/v1")])
    repo.ok("spawn", "w1", "-a", "claude", "-m", "sonnet", "-d", "Add hello.txt")
    shown = repo.wait("w1", "exited", "failed", timeout=120)
    log = log_of(repo, "w1")
    assert shown["exit_code"] == 0, log
    turns = [r for r in requests if r.get("tools")]  # not Claude Code's side calls
    assert "You are working on task w1" in json.dumps(turns[0])  # the prompt, on stdin
    # acceptEdits let it write; the allowlist let it add and commit, not reset or curl.
    assert repo.git("show", "worker/w1:hello.txt") == "Hello from Claude"
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "Add hello.txt"
    results = {block["tool_use_id"]: block for m in turns[-1]["messages"]
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
        repo: GitRepo, sandbox: Sandbox,
        fake_responses: tuple[str, list[dict[str, object]]]) -> None:
    url, requests = fake_responses
    with_cli(sandbox, "codex")
    sandbox.env["OPENAI_API_KEY"] = "sk-test"
    provider = f'{{name="loopback", base_url="{url}", env_key="OPENAI_API_KEY"}}'
    repo.git("config", "worker.agent.codex.args",
             f"-c 'model_providers.loopback={provider}' -c model_provider=loopback")
    repo.ok("spawn", "w1", "-a", "codex", "-m", "gpt-5", "-d", "say hello")
    shown = repo.wait("w1", "exited", "failed", timeout=120)
    log = log_of(repo, "w1")
    assert shown["exit_code"] == 0, log
    assert "Nothing left to do." in log
    asked = json.dumps(requests[0])
    assert "You are working on task w1" in asked and requests[0]["model"] == "gpt-5"
    # Codex ran our notify program at the end of its turn, and it reached the registry.
    assert "agent: done: Nothing left to do." in history(repo, "w1")
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
        repo: GitRepo, sandbox: Sandbox,
        fake_model: tuple[str, list[dict[str, object]]]) -> None:
    url, requests = fake_model
    sandbox.env["PATH"] = f"{aider_bin()}{os.pathsep}{sandbox.env['PATH']}"
    sandbox.env.update(OPENAI_API_KEY="sk-test", OPENAI_API_BASE=url)
    # Flags of the fake model's making only: the adapter's own stay as they are.
    repo.git("config", "worker.agent.aider.args", "--edit-format whole --no-stream")
    repo.ok("spawn", "w1", "-a", "aider", "-m", "openai/test-model",
            "-d", "Add a file hello.txt that greets the reader.")
    shown = repo.wait("w1", "exited", "failed", timeout=240)
    log = log_of(repo, "w1")
    assert shown["exit_code"] == 0, log
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
        repo: GitRepo, sandbox: Sandbox,
        fake_gemini: tuple[str, list[dict[str, object]]]) -> None:
    url, requests = fake_gemini
    with_cli(sandbox, "gemini")
    sandbox.env.update(GEMINI_API_KEY="test-key", GOOGLE_GEMINI_BASE_URL=url[:-len("/v1")])
    settings = sandbox.home / ".gemini" / "settings.json"  # an API key, chosen once
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"security": {"auth": {"selectedType": "gemini-api-key"}}}')
    repo.ok("spawn", "w1", "-a", "gemini", "-m", "gemini-2.5-pro", "-d", "Add hello.txt")
    shown = repo.wait("w1", "exited", "failed", timeout=120)
    log = log_of(repo, "w1")
    assert shown["exit_code"] == 0, log
    turns = [r for r in requests if r.get("tools")]
    assert "You are working on task w1" in json.dumps(turns[0])  # the prompt, on stdin
    # auto_edit let it write; our policy let it add and commit, not reset.
    assert repo.git("show", "worker/w1:hello.txt") == "Hello from Gemini"
    assert repo.git("log", "-1", "--format=%s", "worker/w1") == "Add hello.txt"
    responses = [part["functionResponse"]["response"] for c in turns[-1]["contents"]
                 for part in c["parts"] if "functionResponse" in part]
    assert ["error" in r for r in responses] == [False, False, False, True]
    assert "denied by policy" in responses[3]["error"]
    repo.ok("merge", "w1")
    assert_clean(repo, "w1")
