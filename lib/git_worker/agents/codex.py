"""OpenAI Codex CLI: `codex exec -s workspace-write --add-dir … -`.

It runs commands in its sandbox, writable: the worktree and what a commit on its branch
writes (see codex_writable); approvals "never" is what exec does. It gets a CODEX_HOME of
its own with the user's auth.json linked in, and its `notify` program records "done".
"""

from __future__ import annotations

import os

from git_worker import installation
from git_worker.agents.base import Cli, Command, Context, Login, model_flag
from git_worker.errors import WorkerError
from git_worker.registry.runtime import RuntimeDir


class Codex(Cli):
    def command(self, program: list[str] | None, *, model: str | None,
                ctx: Context) -> Command:
        import json  # here: see claude.write_claude_settings

        env = {"CODEX_HOME": codex_home(ctx)}
        notify = json.dumps([installation.require(installation.CODEX_NOTIFY_HOOK)])
        writable = [flag for d in codex_writable(ctx) for flag in ("--add-dir", d)]
        return Command([*self.argv0(program), "exec", "-s", "workspace-write", *writable,
                        *codex_tmp_settings(ctx), "-c", f"notify={notify}",
                        *model_flag(model)],
                       operands=["-"],  # the prompt: stdin
                       env=env)


def codex_home(ctx: Context) -> str:
    """A CODEX_HOME of the worker's own, with the user's credentials linked in.

    Codex keeps sessions, logs and databases in CODEX_HOME; parallel workers sharing one
    would contend. auth.json (and config.toml, the user's settings) are symlinks to the
    user's, so a login (or token refresh) is seen by every worker.
    """
    home = RuntimeDir(ctx.runtime_dir).codex_home
    os.makedirs(home, exist_ok=True)
    user_home = os.environ.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex")
    for name in ("auth.json", "config.toml"):
        source, link = os.path.join(user_home, name), os.path.join(home, name)
        if os.path.exists(source) and not os.path.lexists(link):
            os.symlink(source, link)
    return home


def codex_writable(ctx: Context) -> list[str]:
    """What codex's sandbox may write besides the worktree: what `git commit` on the
    worker's own branch writes, and nothing else under the git dir.

    - objects/ (new objects; git makes the fan-out directories and packs there);
    - the worktree's admin dir, <common>/worktrees/<admin>/ (index, HEAD, logs/HEAD,
      ORIG_HEAD…), found from the common dir's side: the worktree's `.git` file is the
      agent's to rewrite;
    - the directory of its branch ref and of that ref's reflog: git writes `<ref>.lock`
      there and renames it, so the directory, not the file, must be writable — with
      worker.branchPrefix `worker/` that is refs/heads/worker/, every worker's branch.
    Not writable: config, hooks/, info/, HEAD, packed-refs, refs/workers/, other refs.
    Measured with codex 0.171.0 (`codex sandbox`): a commit works with exactly these.
    """
    from git_worker import worktrees

    admin = worktrees.admin_dir_in(ctx.common_dir, ctx.worktree)
    if admin is None:
        raise WorkerError(f"{ctx.worktree} is not a registered git worktree",
                          hint="git worker fsck explains the drift")
    ref_dir = os.path.dirname(os.path.join(ctx.common_dir, ctx.branch))
    if ref_dir == os.path.join(ctx.common_dir, "refs", "heads"):  # every branch, main too
        raise WorkerError(
            f"codex's sandbox would have to let it write every branch: its branch "
            f"{ctx.branch} is directly under refs/heads/",
            hint="give workers a directory of their own: git config worker.branchPrefix "
                 "worker/")
    log_dir = os.path.dirname(os.path.join(ctx.common_dir, "logs", ctx.branch))
    os.makedirs(log_dir, exist_ok=True)  # codex refuses a writable root that is missing
    return [os.path.join(ctx.common_dir, "objects"), admin, ref_dir, log_dir]


def codex_tmp_settings(ctx: Context) -> list[str]:
    """workspace-write also lets commands write /tmp and $TMPDIR: not when the git dir
    is below one of them, or all of it would be writable through that."""
    common = os.path.realpath(ctx.common_dir)

    def below(directory: str | None) -> bool:
        return bool(directory) and common.startswith(os.path.realpath(str(directory)) + "/")

    settings = []
    if below("/tmp"):
        settings += ["-c", "sandbox_workspace_write.exclude_slash_tmp=true"]
    if below(os.environ.get("TMPDIR")):
        settings += ["-c", "sandbox_workspace_write.exclude_tmpdir_env_var=true"]
    return settings


ADAPTER = Codex(
    name="codex",
    program="codex",
    description="OpenAI Codex CLI (codex exec)",
    allows="runs commands in its workspace-write sandbox (writable: the worktree, objects, "
           "its worktree's admin dir, its branch's ref directory)",
    install="npm install -g @openai/codex",
    login=Login(files=("$CODEX_HOME/auth.json", "~/.codex/auth.json"), env=("OPENAI_API_KEY",)),
    hook=installation.CODEX_NOTIFY_HOOK,
)
