"""Agent adapters: how to start each coding agent non-interactively.

An adapter turns (model, extra args, the worker's runtime dir) into an argv and an
environment. The prompt always arrives on stdin (and its path in GIT_WORKER_PROMPT_FILE):
task text never becomes an argument and never reaches a shell.

What each built-in adapter allows by default (docs/agents.md says the same):
- claude: `claude -p --permission-mode acceptEdits` — edits files in its worktree without
  asking (acceptEdits covers Claude Code's file commands there too: touch, mkdir, mv, cp,
  rm) and may run `git add/commit/status` (Claude Code itself allows read-only git diff
  and git log, but not their --output); any other command is refused (in -p mode nobody
  can approve it). Never --dangerously-skip-permissions (Claude Code refuses it
  as root anyway); hooks report "waiting"/"done" to the registry through --settings.
- codex: `codex exec -s workspace-write --add-dir …` — runs commands in its sandbox,
  writable: the worktree and what a commit on its branch writes (see codex_writable);
  approvals "never" is what exec does. Own CODEX_HOME with the user's auth.json linked in.
- aider: `aider --message-file <prompt> --yes-always` — edits and auto-commits, says yes to
  its confirmations (but opens no browser); `/.aider*` goes to .git/info/exclude.
- gemini: `gemini --skip-trust --approval-mode auto_edit --policy <file> -p …` — edits files
  without asking, and its policy file allows the same git commands as claude's allowlist;
  any other command is denied (in -p mode nobody can approve it).
Extra flags (e.g. more permissions) only from `git config worker.agent.<name>.args`.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field

from git_worker import installation
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry.runtime import RuntimeDir

BUILTIN = ("claude", "codex", "aider", "gemini")

# The git commands claude and gemini may run without asking: enough to commit their work,
# nothing more (no reset, push, checkout, config, -c, update-ref…). Matched as prefixes, so
# not `git diff` nor `git log`: their --output=<file> writes any file (.git/config, a hook).
GIT_COMMANDS = ("git add", "git commit", "git status")
CLAUDE_ALLOWED_TOOLS = tuple(f"Bash({c}:*)" for c in GIT_COMMANDS)
# The fixed instruction gemini gets with -p; the task itself comes on stdin.
GEMINI_INSTRUCTION = "Carry out the task described above."

# The shipped file each adapter hands its agent (`check` requires it before a spawn).
HOOKS = {"claude": installation.CLAUDE_EVENT_HOOK, "codex": installation.CODEX_NOTIFY_HOOK}


@dataclass(frozen=True)
class Invocation:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # A line this call added to <git-common-dir>/info/exclude (for the undo of a spawn).
    excluded: str | None = None


@dataclass(frozen=True)
class Context:
    """Where the worker lives: what adapters need beyond the model."""

    worker_id: str
    runtime_dir: str  # <git-common-dir>/workers/<id>
    common_dir: str
    worktree: str
    branch: str  # refs/heads/…, as the record says (never read from the worktree)
    env: dict[str, str] = field(default_factory=dict)  # the worker's leases (leases.py)


def custom_names(config: Config) -> list[str]:
    names = []
    for e in config.entries:
        parts = e.key.split(".")
        if len(parts) >= 4 and parts[1] == "agent" and parts[-1] == "command":
            names.append(".".join(parts[2:-1]))
    return sorted(set(names))


def known(config: Config, name: str) -> bool:
    return name in BUILTIN or config.words(f"worker.agent.{name}.command") is not None


def check(config: Config, name: str) -> None:
    """Fail before anything is created when ``name`` is no adapter at all, or when the
    hook it hands its agent is missing from this installation."""
    if not known(config, name):
        raise _unknown(config, name)
    if name in HOOKS:
        installation.require(HOOKS[name])


AIDER_EXCLUDE = "/.aider*"


def invocation(config: Config, name: str, *, model: str | None, ctx: Context) -> Invocation:
    """The argv and environment that start agent ``name`` for the worker in ``ctx``.

    `worker.agent.<name>.command` replaces a built-in adapter's program (e.g. a wrapper
    script); the adapter's flags still follow it.
    """
    prompt_file = RuntimeDir(ctx.runtime_dir).prompt
    env = {**ctx.env, "GIT_WORKER_PROMPT_FILE": prompt_file}
    excluded = None
    extra = config.words(f"worker.agent.{name}.args") or []
    command = config.words(f"worker.agent.{name}.command")
    if name == "claude":
        settings = write_claude_settings(ctx)
        argv = [*(command or ["claude"]), "-p", "--permission-mode", "acceptEdits",
                "--allowedTools", *CLAUDE_ALLOWED_TOOLS, "--settings", settings]
        argv += ["--model", model] if model else []
    elif name == "codex":
        env["CODEX_HOME"] = codex_home(ctx)
        notify = json.dumps([installation.require(installation.CODEX_NOTIFY_HOOK)])
        writable = [flag for d in codex_writable(ctx) for flag in ("--add-dir", d)]
        argv = [*(command or ["codex"]), "exec", "-s", "workspace-write", *writable,
                *codex_tmp_settings(ctx), "-c", f"notify={notify}"]
        argv += ["--model", model] if model else []
        argv.append("-")  # the prompt: stdin
    elif name == "aider":
        # Its histories go to the runtime dir and it leaves .gitignore alone; its repo-map
        # cache (.aider.tags.cache.*) must be in the worktree, so it is excluded — or
        # `git worker rm` would find an untracked directory. --yes-always would also say
        # yes to "open this URL in a browser?": BROWSER=true makes that a no-op.
        argv = [*(command or ["aider"]), "--message-file", prompt_file, "--yes-always",
                "--no-gitignore", "--no-check-update", "--no-show-release-notes",
                "--no-analytics",
                "--chat-history-file", RuntimeDir(ctx.runtime_dir).aider_chat,
                "--input-history-file", RuntimeDir(ctx.runtime_dir).aider_input,
                "--llm-history-file", RuntimeDir(ctx.runtime_dir).aider_llm]
        argv += ["--model", model] if model else []
        env["BROWSER"] = "true"
        excluded = exclude(ctx.common_dir, AIDER_EXCLUDE)
    elif name == "gemini":
        argv = [*(command or ["gemini"]), "--skip-trust", "--approval-mode", "auto_edit",
                "--policy", write_gemini_policy(ctx)]
        argv += ["--model", model] if model else []
        argv += ["-p", GEMINI_INSTRUCTION]  # appended to the prompt read from stdin
    elif command is not None:
        argv = list(command)
        if model:
            env["GIT_WORKER_MODEL"] = model
    else:
        raise _unknown(config, name)
    # The extra flags go before a trailing "-p TEXT"/"-" so they stay options.
    tail = 2 if name == "gemini" else 1 if name == "codex" else 0
    argv[len(argv) - tail:len(argv) - tail] = extra
    return Invocation(name, argv, env, excluded)


def allows(name: str) -> str:
    """One line, for doctor and docs/agents.md: what the adapter may do without asking."""
    return {
        "claude": "edits files (and file commands); runs only git add/commit/status "
                  "(acceptEdits)",
        "codex": "runs commands in its workspace-write sandbox (writable: the worktree, "
                 "objects, its worktree's admin dir, its branch's ref directory)",
        "aider": "edits and auto-commits; answers yes to its confirmations (--yes-always)",
        "gemini": "edits files; runs only git add/commit/status (auto_edit, "
                  "--policy)",
    }.get(name, "whatever its configured command does")


# --- per-agent preparation ---------------------------------------------------------------


def write_claude_settings(ctx: Context) -> str:
    """Claude Code settings that report the agent's own events to git-worker.

    Passed with --settings rather than written into the worktree's .claude/: nothing
    appears in the worktree (so `git worker rm` never sees an untracked file), and a
    user's own .claude/settings*.json there is neither overwritten nor merged into.
    """
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


def write_gemini_policy(ctx: Context) -> str:
    """A Gemini CLI policy file allowing GIT_COMMANDS (auto_edit approves edits only)."""
    prefixes = ", ".join(json.dumps(c) for c in GIT_COMMANDS)  # TOML strings, like JSON's
    path = RuntimeDir(ctx.runtime_dir).gemini_policy
    with open(path, "w", encoding="utf-8") as f:
        f.write("# git-worker: what a gemini worker may run without asking\n"
                f'[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = [{prefixes}]\n'
                'decision = "allow"\npriority = 100\n')
    return path


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


def exclude(common_dir: str, pattern: str) -> str | None:
    """Add ``pattern`` to <git-common-dir>/info/exclude; return it if this call added it.

    git reads info/exclude from the common dir only (a linked worktree has none of its
    own), so this also applies to the main worktree — for agent caches, what users want.
    """
    path = os.path.join(common_dir, "info", "exclude")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if pattern in text.splitlines():
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="surrogateescape") as f:
        f.write(("" if not text or text.endswith("\n") else "\n") + pattern + "\n")
    return pattern


def unexclude(common_dir: str, pattern: str) -> None:
    """Undo exclude(): drop the line again."""
    path = os.path.join(common_dir, "info", "exclude")
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        lines = f.read().splitlines(keepends=True)
    kept = [ln for ln in lines if ln.rstrip("\n") != pattern]
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.writelines(kept)


def _unknown(config: Config, name: str) -> WorkerError:
    names = ", ".join([*BUILTIN, *custom_names(config)])
    return WorkerError(
        f"unknown agent '{name}' (known: {names})",
        hint=f"define it: git config worker.agent.{name}.command 'my-agent --flag'",
    )
