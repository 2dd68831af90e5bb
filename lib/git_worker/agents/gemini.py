"""Gemini CLI: `gemini --skip-trust --approval-mode auto_edit --policy <file> -p …`.

It edits files without asking, and its policy file allows the same git commands as
claude's allowlist; any other command is denied (in -p mode nobody can approve it).
"""

from __future__ import annotations

from git_worker.agents.base import GIT_COMMANDS, Cli, Command, Context, Login, model_flag
from git_worker.registry.runtime import RuntimeDir

# The fixed instruction gemini gets with -p; the task itself comes on stdin.
GEMINI_INSTRUCTION = "Carry out the task described above."


class Gemini(Cli):
    def command(self, program: list[str] | None, *, model: str | None,
                ctx: Context) -> Command:
        return Command([*self.argv0(program), "--skip-trust", "--approval-mode", "auto_edit",
                        "--policy", write_gemini_policy(ctx), *model_flag(model)],
                       # appended to the prompt read from stdin; the extra args go before it
                       operands=["-p", GEMINI_INSTRUCTION])


def write_gemini_policy(ctx: Context) -> str:
    """A Gemini CLI policy file allowing GIT_COMMANDS (auto_edit approves edits only)."""
    import json  # here: see claude.write_claude_settings

    prefixes = ", ".join(json.dumps(c) for c in GIT_COMMANDS)  # TOML strings, like JSON's
    path = RuntimeDir(ctx.runtime_dir).gemini_policy
    with open(path, "w", encoding="utf-8") as f:
        f.write("# git-worker: what a gemini worker may run without asking\n"
                f'[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = [{prefixes}]\n'
                'decision = "allow"\npriority = 100\n')
    return path


ADAPTER = Gemini(
    name="gemini",
    program="gemini",
    description="Gemini CLI (gemini -p)",
    allows="edits files; runs only git add/commit/status (auto_edit, --policy)",
    install="npm install -g @google/gemini-cli",
    login=Login(files=("~/.gemini/oauth_creds.json",), env=("GEMINI_API_KEY", "GOOGLE_API_KEY")),
)
