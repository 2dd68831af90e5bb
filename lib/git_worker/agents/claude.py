"""Claude Code: `claude -p --permission-mode acceptEdits …`.

It edits files in its worktree without asking (acceptEdits covers Claude Code's file
commands there too: touch, mkdir, mv, cp, rm) and may run `git add/commit/status` (Claude
Code itself allows read-only git diff and git log, but not their --output); any other
command is refused (in -p mode nobody can approve it). Never
--dangerously-skip-permissions (Claude Code refuses it as root anyway). Its hooks report
"started"/"waiting"/"done"/"running" to the registry through --settings.
"""

from __future__ import annotations

from git_worker import installation
from git_worker.agents.base import GIT_COMMANDS, Cli, Command, Context, Login, model_flag
from git_worker.registry.runtime import RuntimeDir

CLAUDE_ALLOWED_TOOLS = tuple(f"Bash({c}:*)" for c in GIT_COMMANDS)


class Claude(Cli):
    def command(self, program: list[str] | None, *, model: str | None,
                ctx: Context) -> Command:
        settings = write_claude_settings(ctx)
        return Command([*self.argv0(program), "-p", "--permission-mode", "acceptEdits",
                        "--allowedTools", *CLAUDE_ALLOWED_TOOLS, "--settings", settings,
                        *model_flag(model)])


def write_claude_settings(ctx: Context) -> str:
    """Claude Code settings that report the agent's own events to git-worker.

    Passed with --settings rather than written into the worktree's .claude/: nothing
    appears in the worktree (so `git worker rm` never sees an untracked file), and a
    user's own .claude/settings*.json there is neither overwritten nor merged into.
    """
    import json  # json and shlex here, when a claude worker is launched: every launched
    import shlex  # spawn imports this table, ~3 ms before its claim (measured)

    script = installation.require(installation.CLAUDE_EVENT_HOOK)

    def hook(event: str) -> list[dict[str, object]]:
        return [{"hooks": [{"type": "command", "command": f"{shlex.quote(script)} {event}"}]}]

    settings = {"hooks": {
        "SessionStart": hook("started"),
        "Notification": hook("waiting"),
        "Stop": hook("done"),
        "UserPromptSubmit": hook("running"),
        "PostToolUse": hook("running"),
    }}
    path = RuntimeDir(ctx.runtime_dir).claude_settings
    with open(path, "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=2)
    return path


ADAPTER = Claude(
    name="claude",
    program="claude",
    description="Claude Code (claude -p)",
    allows="edits files (and file commands); runs only git add/commit/status (acceptEdits)",
    install="npm install -g @anthropic-ai/claude-code",
    login=Login(files=("$CLAUDE_CONFIG_DIR/.credentials.json", "~/.claude/.credentials.json"),
                env=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")),
    hook=installation.CLAUDE_EVENT_HOOK,
)
