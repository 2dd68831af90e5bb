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
    from collections.abc import Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    import argparse

    # argparse's own error() prints the usage and exits 2, which is EXIT_USAGE.
    parser = argparse.ArgumentParser(
        prog="git worker", description="Run coding agents in parallel, one per task, each in "
        "its own worktree and branch. `git worker --help` opens the manual.")
    parser.add_argument("--version", action="version", version=f"git-worker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("spawn", help="start workers for tasks")
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

    p = sub.add_parser("list", aliases=["ls"], help="list workers")
    p.add_argument("--json", action="store_true", help="JSON array of records")
    p.add_argument("--all", action="store_true", help="include merged workers")

    p = sub.add_parser("show", help="show one worker")
    comp.attach(p.add_argument("id", metavar="ID"), comp.worker_ids)
    p.add_argument("--json", action="store_true")
    p.add_argument("--history", action="store_true", help="every recorded state change")

    p = sub.add_parser("rm", aliases=["remove"], help="remove workers")
    comp.attach(p.add_argument("ids", nargs="+", metavar="ID"), comp.worker_ids)
    p.add_argument("-f", "--force", action="store_true",
                   help="remove even with uncommitted changes, unmerged commits "
                        "or a live agent")
    p.add_argument("--keep-branch", action="store_true", help="keep the worker's branch")

    p = sub.add_parser("fsck", help="check registry, branches and worktrees agree")
    p.add_argument("--repair", action="store_true", help="fix what can be fixed without loss")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("config", help="effective worker.* settings and their origin")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("logs", help="the agent's output (also after its session is gone)")
    comp.attach(p.add_argument("id", metavar="ID"), comp.worker_ids)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until it exits")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="only the last N lines")

    p = sub.add_parser("attach", help="open the worker's tmux session")
    comp.attach(p.add_argument("id", metavar="ID"), comp.worker_ids)

    p = sub.add_parser("stop", help="end agents; keep their worktrees and branches")
    comp.attach(p.add_argument("ids", nargs="*", metavar="ID"), comp.worker_ids)
    p.add_argument("--all", action="store_true", help="every running or queued worker")

    p = sub.add_parser("prompt", help="print the prompt a worker's agent received")
    comp.attach(p.add_argument("id", metavar="ID"), comp.worker_ids)
    p = sub.add_parser("review", help="run the review gate on a worker")
    comp.attach(p.add_argument("id", metavar="ID"), comp.worker_ids)

    p = sub.add_parser("merge", help="land a worker's branch in its base branch")
    comp.attach(p.add_argument("id", metavar="ID"), comp.worker_ids)
    p.add_argument("--squash", action="store_true", help="one commit instead of a merge")
    comp.attach(p.add_argument("--into", metavar="BRANCH",
                               help="merge into BRANCH instead of the base"), comp.branches)
    p.add_argument("--force", action="store_true",
                   help="merge even if the review blocked or is missing, or the agent runs")

    p = sub.add_parser("conflicts", help="forecast which workers' branches collide")
    comp.attach(p.add_argument("ids", nargs="*", metavar="ID",
                               help="only pairs involving these workers"), comp.worker_ids)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("hooks", help="install or remove the git hooks that protect workers")
    p.add_argument("action", choices=["install", "uninstall"])

    p = sub.add_parser("doctor", help="check git, agents, tracker, gate, remote and settings")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("completion", help="print the shell completion script")
    p.add_argument("shell", choices=("bash", "zsh", "fish"))
    return parser


def dispatch(args: argparse.Namespace) -> int:
    from git_worker.config import Config
    from git_worker.repo import Repo

    command = {"ls": "list", "remove": "rm"}.get(args.command, args.command)
    if command == "completion":
        from git_worker.commands import completion

        return completion.run(args.shell)
    if command == "config":
        from git_worker.commands import config

        return config.run(Config.load(), as_json=args.json)
    if command == "doctor":
        from git_worker.commands import doctor

        return doctor.run(as_json=args.json)
    repo = Repo.discover()
    if command == "spawn":
        from git_worker.commands import spawn

        return spawn.run(repo, Config.load(), ids=[*args.ids, *args.more_ids],
                         description=args.description, base=args.base, fetch=args.fetch,
                         agent=args.agent, model=args.model, launch=args.launch,
                         dry_run=args.dry_run, as_json=args.json, queue=args.queue)
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

        return fsck.run(repo, Config.load(), repair=args.repair, as_json=args.json)
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

        return review.run(repo, Config.load(), args.id)
    if command == "merge":
        from git_worker.commands import merge

        return merge.run(repo, Config.load(), args.id, squash=args.squash, into=args.into,
                         force=args.force)
    if command == "conflicts":
        from git_worker.commands import conflicts

        return conflicts.run(repo, Config.load(), ids=args.ids, as_json=args.json)
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
    args = build_parser().parse_args(arguments)
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
