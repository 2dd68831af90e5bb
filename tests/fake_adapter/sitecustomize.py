"""A fake agent adapter, added to git-worker's table in every Python process started with
this directory on PYTHONPATH (tests/test_adapters.py does, for `git worker …` run as a
user runs it). It is what adding an agent takes: one adapter, one row in agents.TABLE.
"""

from __future__ import annotations

from git_worker import agents
from git_worker.agents.base import Cli, Command, Context, Login, model_flag


class Fake(Cli):
    def command(self, program: list[str] | None, *, model: str | None,
                ctx: Context) -> Command:
        return Command([*self.argv0(program), "--fake-run", "--prompt-file", ctx.prompt_file,
                        *model_flag(model)],
                       operands=["--", "go"],
                       env={"FAKE_WORKER": ctx.worker_id})


agents.TABLE["fake"] = Fake(
    name="fake",
    program="fake-agent",
    description="Fake agent (fake-agent --fake-run)",
    allows="only what a test's stand-in does",
    install="pip install fake-agent",
    login=Login(env=("FAKE_AGENT_TOKEN",)),
)
