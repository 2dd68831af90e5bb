# PYTHON_ARGCOMPLETE_OK
"""The command line: argparse and dispatch only.

Nothing heavy is imported at module level: completion (argcomplete) runs on this parser
before dulwich or any command module is loaded.
"""

from __future__ import annotations

import os
import sys

from git_worker import __version__
from git_worker import completion as comp

# Only os and sys above: a completion request (see main) must not pay for argparse,
# typing or collections before the fast path has had its chance. Types for mypy only:
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from git_worker.config import Config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's subparser (or all, if unknown).

    Building all twenty subparsers costs more than some commands' own work (~10-30 ms),
    so a command line that names its command gets only that one. Help, errors and
    completion see every command.
    """
    import argparse

    # argparse's own error() prints the usage and exits 2, which is EXIT_USAGE.
    parser = argparse.ArgumentParser(
        prog="git worker", formatter_class=_formatter,
        description="Run coding agents in parallel, one per task, each in its own worktree "
        "and branch. `git worker --help` opens the manual.")
    parser.add_argument("--version", action="version", version=f"git-worker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = _COMMAND_OF.get(only or "")
    for name, (aliases, text, add_arguments) in _COMMANDS.items():
        if wanted is None or wanted == name:
            add_arguments(sub.add_parser(name, aliases=aliases, help=text,
                                         formatter_class=_formatter))
    return parser


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's help formatter, told the terminal's width.

    argparse builds a formatter for every add_argument (to check its metavar); left to
    itself, each asks shutil.get_terminal_size, and importing shutil costs list and show
    ~4 ms. This asks the same way (COLUMNS, then the terminal, then 80 columns).
    """
    import argparse

    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
    return argparse.HelpFormatter(prog, width=columns - 2)


def _spawn(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="*", metavar="ID", help="task ids (e.g. bd issues)"),
                comp.ready_issues)
    comp.attach(p.add_argument("-t", "--task", dest="more_ids", action="append", default=[],
                               metavar="ID", help="a task id (repeatable; same as positional ID)"),
                comp.ready_issues)
    comp.attach(p.add_argument("-d", "--description", metavar="TEXT",
                               help="the task text, when no tracker knows the id"), comp.nothing)
    comp.attach(p.add_argument("-f", "--from", "--fromBranch", dest="base", metavar="BASE",
                               help="base branch (default: worker.baseBranch, else auto-detected)"),
                comp.branches)
    p.add_argument("--no-fetch", "--noFetch", dest="fetch", action="store_false",
                   help="do not fetch a remote-tracking base first")
    comp.attach(p.add_argument("-a", "--agent", help="agent adapter (default: worker.agent)"),
                comp.agents)
    comp.attach(p.add_argument("-m", "--model", help="model for the agent (default: worker.model)"),
                comp.nothing)
    p.add_argument("--no-launch", dest="launch", action="store_false",
                   help="prepare branch and worktree, start no agent")
    p.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
    p.add_argument("--json", action="store_true", help="print the new records as JSON")
    p.add_argument("--queue", action="store_true",
                   help="over worker.maxConcurrent: queue the worker instead of failing")
    review = p.add_mutually_exclusive_group()
    review.add_argument("--review", dest="review", action="store_true", default=None,
                        help="run the review gate when the agent exits 0 (overrides "
                             "worker.review)")
    review.add_argument("--no-review", dest="review", action="store_false",
                        help="do not review these workers automatically")


def _list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="JSON array of records")
    p.add_argument("--all", action="store_true", help="include merged workers")


def _show(p: argparse.ArgumentParser) -> None:
    _worker_id(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--history", action="store_true", help="every recorded state change")


def _rm(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="+", metavar="ID"), comp.worker_ids)
    p.add_argument("-f", "--force", action="store_true",
                   help="remove even with uncommitted changes, unmerged commits "
                        "or a live agent")
    p.add_argument("--keep-branch", action="store_true", help="keep the worker's branch")


def _fsck(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repair", action="store_true", help="fix what can be fixed without loss")
    _json(p)


def _logs(p: argparse.ArgumentParser) -> None:
    _worker_id(p)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until it exits")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="only the last N lines")


def _stop(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="*", metavar="ID"), comp.worker_ids)
    p.add_argument("--all", action="store_true", help="every running or queued worker")


def _merge(p: argparse.ArgumentParser) -> None:
    _worker_id(p)
    p.add_argument("--squash", action="store_true", help="one commit instead of a merge")
    comp.attach(p.add_argument("--into", metavar="BRANCH",
                               help="merge into BRANCH instead of the base"), comp.branches)
    p.add_argument("--force", action="store_true",
                   help="merge even if the review blocked or is missing, or the agent runs")


def _conflicts(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="*", metavar="ID",
                               help="only pairs involving these workers"), comp.worker_ids)
    _json(p)


def _watch(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="include merged workers")
    p.add_argument("--once", action="store_true",
                   help="print the table once (plain text, for scripts) instead of the dashboard")


def _hooks(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["install", "uninstall"])


def _completion(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=("bash", "zsh", "fish"))


def _worker_id(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("id", metavar="ID"), comp.worker_ids)


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


# name: (aliases, help, arguments) — in the order `git worker -h` lists them.
_COMMANDS: dict[str, tuple[list[str], str, Callable[[argparse.ArgumentParser], None]]] = {
    "spawn": ([], "start workers for tasks", _spawn),
    "list": (["ls"], "list workers", _list),
    "show": ([], "show one worker", _show),
    "rm": (["remove"], "remove workers", _rm),
    "fsck": ([], "check registry, branches and worktrees agree", _fsck),
    "config": ([], "effective worker.* settings and their origin", _json),
    "logs": ([], "the agent's output (also after its session is gone)", _logs),
    "attach": ([], "open the worker's tmux session", _worker_id),
    "stop": ([], "end agents; keep their worktrees and branches", _stop),
    "prompt": ([], "print the prompt a worker's agent received", _worker_id),
    "review": ([], "run the review gate on a worker", _worker_id),
    "merge": ([], "land a worker's branch in its base branch", _merge),
    "conflicts": ([], "forecast which workers' branches collide", _conflicts),
    "watch": ([], "a live dashboard of every worker, with keys for the loop", _watch),
    "hooks": ([], "install or remove the git hooks that protect workers", _hooks),
    "doctor": ([], "check git, agents, tracker, gate, remote and settings", _json),
    "completion": ([], "print the shell completion script", _completion),
}
_COMMAND_OF = {alias: name for name, (aliases, _, _) in _COMMANDS.items()
               for alias in (name, *aliases)}


def _command_word(arguments: list[str]) -> str | None:
    """The subcommand a command line names (its first word), or None."""
    return arguments[0] if arguments and not arguments[0].startswith("-") else None


def _config() -> Config:
    # Not imported for list, show and the other commands that read no setting.
    from git_worker.config import Config

    return Config.load()


def dispatch(args: argparse.Namespace) -> int:
    from git_worker.repo import Repo

    command = {"ls": "list", "remove": "rm"}.get(args.command, args.command)
    if command == "completion":
        from git_worker.commands import completion

        return completion.run(args.shell)
    if command == "config":
        from git_worker.commands import config

        return config.run(_config(), as_json=args.json)
    if command == "doctor":
        from git_worker.commands import doctor

        return doctor.run(as_json=args.json)
    repo = Repo.discover()
    if command == "spawn":
        from git_worker.commands import spawn

        return spawn.run(repo, _config(), ids=[*args.ids, *args.more_ids],
                         description=args.description, base=args.base, fetch=args.fetch,
                         agent=args.agent, model=args.model, launch=args.launch,
                         dry_run=args.dry_run, as_json=args.json, queue=args.queue,
                         review=args.review)
    if command == "list":
        from git_worker.commands import list as list_cmd

        return list_cmd.run(repo, as_json=args.json, show_all=args.all)
    if command == "show":
        from git_worker.commands import show

        return show.run(repo, args.id, as_json=args.json, history=args.history)
    if command == "rm":
        from git_worker.commands import rm

        return rm.run(repo, args.ids, force=args.force, keep_branch=args.keep_branch)
    if command == "fsck":
        from git_worker.commands import fsck

        return fsck.run(repo, _config(), repair=args.repair, as_json=args.json)
    if command == "logs":
        from git_worker.commands import logs

        return logs.run(repo, args.id, follow=args.follow, lines=args.lines)
    if command == "attach":
        from git_worker.commands import attach

        return attach.run(repo, args.id)
    if command == "stop":
        from git_worker.commands import stop

        return stop.run(repo, args.ids, stop_all=args.all)
    if command == "prompt":
        from git_worker.commands import prompt

        return prompt.run(repo, args.id)
    if command == "review":
        from git_worker.commands import review

        return review.run(repo, _config(), args.id)
    if command == "merge":
        from git_worker.commands import merge

        return merge.run(repo, _config(), args.id, squash=args.squash, into=args.into,
                         force=args.force)
    if command == "conflicts":
        from git_worker.commands import conflicts

        return conflicts.run(repo, _config(), ids=args.ids, as_json=args.json)
    if command == "watch":
        from git_worker.commands import watch

        return watch.run(repo, show_all=args.all, once=args.once)
    if command == "hooks":
        from git_worker.commands import hooks

        return hooks.run(repo, action=args.action)
    raise AssertionError(f"unhandled command {command}")


def main(argv: Sequence[str] | None = None) -> int:
    if "_ARGCOMPLETE" in os.environ and argv is None:
        comp.complete(build_parser)  # answers the shell and exits; see completion.py
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["--help"]:
        # What `git worker --help` does (git runs `man git-worker`), for git-worker --help.
        from git_worker import manual

        return manual.show()
    args = build_parser(_command_word(arguments)).parse_args(arguments)
    from git_worker.errors import UsageError, WorkerError

    try:
        return dispatch(args)
    except UsageError as e:
        print(f"usage error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except WorkerError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # `git worker list | head`: not an error
        return EXIT_OK
    except Exception:
        if os.environ.get("GIT_WORKER_DEBUG"):
            import traceback

            traceback.print_exc()
        else:
            exc = sys.exc_info()[1]
            print(f"git-worker: internal error: {type(exc).__name__}: {exc}\n"
                  "This is a bug; please report it with the output of the same command run "
                  "with GIT_WORKER_DEBUG=1.", file=sys.stderr)
        return EXIT_BUG
