"""aider: `aider --message-file <prompt> --yes-always …`.

It edits and auto-commits, and says yes to its confirmations (but opens no browser);
`/.aider*` goes to .git/info/exclude.
"""

from __future__ import annotations

from git_worker.agents.base import Cli, Command, Context, Login, exclude, model_flag
from git_worker.registry.runtime import RuntimeDir

AIDER_EXCLUDE = "/.aider*"


class Aider(Cli):
    def command(self, program: list[str] | None, *, model: str | None,
                ctx: Context) -> Command:
        # Its histories go to the runtime dir and it leaves .gitignore alone; its repo-map
        # cache (.aider.tags.cache.*) must be in the worktree, so it is excluded — or
        # `git worker rm` would find an untracked directory. --yes-always would also say
        # yes to "open this URL in a browser?": BROWSER=true makes that a no-op.
        runtime = ctx.runtime_dir
        return Command(
            [*self.argv0(program), "--message-file", ctx.prompt_file, "--yes-always",
             "--no-gitignore", "--no-check-update", "--no-show-release-notes",
             "--no-analytics",
             "--chat-history-file", RuntimeDir(runtime).aider_chat,
             "--input-history-file", RuntimeDir(runtime).aider_input,
             "--llm-history-file", RuntimeDir(runtime).aider_llm, *model_flag(model)],
            env={"BROWSER": "true"},
            excluded=exclude(ctx.common_dir, AIDER_EXCLUDE))


ADAPTER = Aider(
    name="aider",
    program="aider",
    description="aider (aider --message)",
    allows="edits and auto-commits; answers yes to its confirmations (--yes-always)",
    install="python -m pip install aider-install && aider-install",
    login=Login(env=("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY",
                     "DEEPSEEK_API_KEY", "OPENROUTER_API_KEY")),
)
