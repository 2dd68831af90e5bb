"""What an agent reports about itself, through the hooks git-worker installs (hooks/).

Called by the hook an adapter hands its agent (`Adapter.hook`: hooks/claude-code/event for
claude, hooks/codex/notify for codex), inside the agent's environment, which the runner
gave GIT_WORKER_ID and GIT_WORKER_COMMON_DIR. The agent's event JSON (Claude's hook input,
Codex's notification) arrives on stdin and is only parsed, for the message to show.
Never fails loudly: a hook must not disturb the agent.
"""

from __future__ import annotations

import json
import os
import sys

EVENTS = ("started", "waiting", "done", "running")
_MAX_INPUT = 1 << 20


def main(args: list[str]) -> int:
    event = args[0] if args else ""
    worker_id = os.environ.get("GIT_WORKER_ID")
    common_dir = os.environ.get("GIT_WORKER_COMMON_DIR")
    if event not in EVENTS or not worker_id or not common_dir:
        print(f"git-worker hook: ignored (event {event!r})", file=sys.stderr)
        return 0
    message = _message(sys.stdin.buffer.read(_MAX_INPUT) if not sys.stdin.isatty() else b"")
    from git_worker import lifecycle
    from git_worker.repo import Repo

    repo = Repo(common_dir, common_dir, os.path.dirname(common_dir), None)
    try:
        lifecycle.record_agent_event(repo, worker_id, event, message)
    except Exception as e:  # the agent goes on; the exit code will still be recorded
        print(f"git-worker hook: could not record '{event}': {e}", file=sys.stderr)
    return 0


def _message(data: bytes) -> str:
    """The human part of the event: Claude's Notification `message`, or nothing."""
    try:
        raw = json.loads(data) if data.strip() else {}
    except (ValueError, RecursionError):  # garbage from the agent is no message
        return ""
    if not isinstance(raw, dict):
        return ""
    text = raw.get("message") or raw.get("last-assistant-message") or ""
    return " ".join(str(text).split())[:160]
