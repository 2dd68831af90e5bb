"""Model servers on loopback for the real agent CLIs (tests/test_real_agents.py).

Each speaks one vendor's API just well enough for its CLI to run a whole session, and
plays a script: the next tool call for each tool result the CLI has sent back so far,
then a last answer. Every request body is kept in ``requests`` for the test to read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Served = tuple[str, list[dict[str, object]]]  # (base URL ending in /v1, requests received)


def serve(kind: type[FakeModel], **attributes: str) -> Iterator[Served]:
    """Run a server of ``kind`` on a free loopback port until the generator is closed."""
    requests: list[dict[str, object]] = []
    handler = type(kind.__name__, (kind,), {"requests": requests, **attributes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    server.shutdown()
    server.server_close()


def sse(events: list[tuple[str, dict[str, object]]]) -> bytes:
    """Server-sent events, each with its type repeated in the data, as the APIs send."""
    return b"".join(f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()
                    for kind, fields in events)


class FakeModel(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the CLIs keep their connections open
    requests: list[dict[str, object]]
    workdir = ""  # the worker's worktree: tools that write take absolute paths

    def answer(self, body: dict[str, object]) -> tuple[str, bytes]:
        """(content type, response body) for one request."""
        raise NotImplementedError

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        content_type, data = self.answer(body)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class OpenAIChat(FakeModel):
    """Chat Completions (aider, not streaming): asked for an edit, it writes hello.txt whole;
    asked for a commit message (aider's second call), it gives one."""

    def answer(self, body: dict[str, object]) -> tuple[str, bytes]:
        messages = body["messages"]
        assert isinstance(messages, list)
        system = str(messages[0].get("content", "")).lower()
        text = ("Add hello.txt" if "commit message" in system
                else "hello.txt\n```\nHello from the model\n```\n")
        return "application/json", json.dumps({
            "id": "1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }).encode()


class OpenAIResponses(FakeModel):
    """The Responses API as codex streams it: one short answer, no tool calls."""

    def answer(self, body: dict[str, object]) -> tuple[str, bytes]:
        message = {"type": "message", "role": "assistant", "id": "msg_1",
                   "content": [{"type": "output_text", "text": "Nothing left to do."}]}
        usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
        return "text/event-stream", sse([
            ("response.created", {"response": {"id": "resp_1"}}),
            ("response.output_item.done", {"item": message}),
            ("response.completed", {"response": {"id": "resp_1", "usage": usage}})])


class OpenAIResponsesShell(FakeModel):
    """The Responses API as codex streams it, with one tool call: codex's `exec_command`
    runs ``shell_command`` (in codex's sandbox); then a short answer."""

    shell_command = ""

    def answer(self, body: dict[str, object]) -> tuple[str, bytes]:
        done = json.dumps(body.get("input")).count('"function_call_output"')
        usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
        item: dict[str, object]
        if done == 0:
            item = {"type": "function_call", "id": "fc_1", "call_id": "call_1",
                    "name": "exec_command", "arguments": json.dumps({"cmd": self.shell_command})}
        else:
            item = {"type": "message", "role": "assistant", "id": "msg_1",
                    "content": [{"type": "output_text", "text": "Done."}]}
        return "text/event-stream", sse([
            ("response.created", {"response": {"id": f"resp_{done}"}}),
            ("response.output_item.done", {"item": item}),
            ("response.completed", {"response": {"id": f"resp_{done}", "usage": usage}})])


class AnthropicMessages(FakeModel):
    """The Messages API as Claude Code streams it. Its script: write hello.txt, stage and
    commit it, then try `git reset --hard` and `curl`. Requests without tools (Claude
    Code's side calls) get the last answer at once."""

    def script(self) -> list[tuple[str, dict[str, str]]]:
        return [("Write", {"file_path": f"{self.workdir}/hello.txt",
                           "content": "Hello from Claude\n"}),
                ("Bash", {"command": "git add hello.txt", "description": "stage"}),
                ("Bash", {"command": "git commit -m 'Add hello.txt'", "description": "commit"}),
                ("Bash", {"command": "git reset --hard HEAD~1", "description": "undo"}),
                ("Bash", {"command": "curl -s http://127.0.0.1:9/", "description": "fetch"})]

    def answer(self, body: dict[str, object]) -> tuple[str, bytes]:
        done = json.dumps(body["messages"]).count('"tool_result"')
        script = self.script() if body.get("tools") else []
        block: dict[str, object]
        if done < len(script):
            name, args = script[done]
            block = {"type": "tool_use", "id": f"toolu_{done}", "name": name, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(args)}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": "Done."}
            stop = "end_turn"
        message = {"id": "msg_1", "type": "message", "role": "assistant",
                   "model": body["model"], "content": [], "stop_reason": None,
                   "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
        return "text/event-stream", sse([
            ("message_start", {"message": message}),
            ("content_block_start", {"index": 0, "content_block": block}),
            ("content_block_delta", {"index": 0, "delta": delta}),
            ("content_block_stop", {"index": 0}),
            ("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                               "usage": {"output_tokens": 1}}),
            ("message_stop", {})])


class GeminiGenerate(FakeModel):
    """The Gemini API's streamGenerateContent. Its script: write hello.txt, stage and
    commit it, then try `git reset --hard`."""

    def script(self) -> list[tuple[str, dict[str, str]]]:
        return [("write_file", {"file_path": f"{self.workdir}/hello.txt",
                                "content": "Hello from Gemini\n"}),
                ("run_shell_command", {"command": "git add hello.txt"}),
                ("run_shell_command", {"command": "git commit -m 'Add hello.txt'"}),
                ("run_shell_command", {"command": "git reset --hard HEAD~1"})]

    def answer(self, body: dict[str, object]) -> tuple[str, bytes]:
        done = json.dumps(body["contents"]).count('"functionResponse"')
        script = self.script() if body.get("tools") else []
        part: dict[str, object] = {"text": "Done."}
        if done < len(script):
            part = {"functionCall": {"name": script[done][0], "args": script[done][1]}}
        chunk = {"candidates": [{"content": {"role": "model", "parts": [part]},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1,
                                   "totalTokenCount": 2}}
        return "text/event-stream", f"data: {json.dumps(chunk)}\r\n\r\n".encode()
