# PYTHON_ARGCOMPLETE_OK
"""The command line: argparse and dispatch only.

Nothing heavy is imported at module level: completion (argcomplete) runs on this parser
before dulwich or any command module is loaded.
"""

from __future__ import annotations

import os
import sys

from git_worker import completion as comp

# Only os and sys above: a completion request (see main) must not pay for argparse,
# typing or collections before the fast path has had its chance. Types for mypy only:
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    from git_worker.config import Config
    from git_worker.git import Running
    from git_worker.repo import Repo

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class Plain:
    """A command line plain_options read, as argparse's Namespace would hold it (not
    types.SimpleNamespace: importing types costs ~0.3 ms)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    if TYPE_CHECKING:  # its fields, like a Namespace's, are the parser's dests
        def __getattr__(self, name: str) -> Any: ...


if TYPE_CHECKING:
    Args = argparse.Namespace | Plain  # argparse's, or plain_options' made alike


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's subparser (or all, if unknown).

    Building all twenty subparsers costs more than some commands' own work (~10-30 ms),
    so a command line that names its command gets only that one. Help, errors and
    completion see every command.
    """

    # argparse's own error() prints the usage and exits 2, which is EXIT_USAGE.
    parser = _parser_class()(
        prog="git worker", formatter_class=_formatter,
        description="Run coding agents in parallel, one per task, each in its own worktree "
        "and branch. `git worker --help` opens the manual.")
    parser.add_argument("--version", action=_version_action(), nargs=0,
                        help="print the version, where git-worker is installed, and the "
                             "versions of Python, dulwich and argcomplete")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = _COMMAND_OF.get(only or "")
    for name, (aliases, text, add_arguments) in _COMMANDS.items():
        if wanted is None or wanted == name:
            add_arguments(sub.add_parser(name, aliases=aliases, help=text,
                                         formatter_class=_formatter))
    return parser


def _version_action() -> type[argparse.Action]:
    """`--version` runs the version command and exits, before any subcommand is required
    (as argparse's own "version" action, whose text would be fixed when the parser is
    built: this one looks up the installation only when asked)."""
    import argparse

    class Version(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                     values: object, option_string: str | None = None) -> None:
            from git_worker.commands import version

            parser.exit(version.run())

    return Version


def _parser_class() -> type[argparse.ArgumentParser]:
    """argparse's parser, whose errors show control characters from argv as escapes
    (`git worker show $'\\e[2J'` must not clear the screen). Subparsers are made of the
    same class."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            from git_worker.output import visible

            super().error(visible(message))

    return Parser


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
    p.add_argument("--on", metavar="HOST",
                   help="spawn on HOST (worker.host.HOST.ssh/.path) over ssh, not here")


def _start(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="+", metavar="ID"), comp.worker_ids)
    comp.attach(p.add_argument("-a", "--agent", help="agent adapter (default: the worker's)"),
                comp.agents)
    comp.attach(p.add_argument("-m", "--model", help="model for the agent (default: the "
                               "worker's)"), comp.nothing)
    p.add_argument("--queue", action="store_true",
                   help="over worker.maxConcurrent: queue the worker instead of failing")


def _list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="JSON array of records")
    p.add_argument("--all", action="store_true", help="include merged workers")
    p.add_argument("--size", action="store_true", help="each worker's disk use (its worktree)")
    p.add_argument("--fetch", action="store_true",
                   help="with worker.remote: fetch the other hosts' records first")


def _show(p: argparse.ArgumentParser) -> None:
    _worker_id(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--history", action="store_true", help="every recorded state change")


def _rm(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="*", metavar="ID"), comp.worker_ids)
    p.add_argument("--merged", action="store_true",
                   help="every worker (or each ID) whose work is in its landing branch "
                        "and whose worktree holds nothing uncommitted")
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


def _review(p: argparse.ArgumentParser) -> None:
    _worker_id(p)
    p.add_argument("--force", action="store_true",
                   help="review even if the worktree is not a registered worktree of this "
                        "repository on the worker's branch")


def _merge(p: argparse.ArgumentParser) -> None:
    _worker_id(p)
    p.add_argument("--squash", action="store_true", help="one commit instead of a merge")
    comp.attach(p.add_argument("--into", metavar="BRANCH",
                               help="merge into BRANCH instead of the base"), comp.branches)
    p.add_argument("--force", action="store_true",
                   help="merge even if the review blocked or is missing, the agent runs, or "
                        "the worktree is not this repository's")


def _sync(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="+", metavar="ID"), comp.worker_ids)
    p.add_argument("--rebase", action="store_true", help="rebase instead of merging")
    p.add_argument("--agent", action="store_true",
                   help="on a conflict, leave it in place and start the worker's agent to "
                        "resolve it and commit")


def _land(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="*", metavar="ID"), comp.worker_ids)
    p.add_argument("--all", action="store_true", help="every worker with commits waiting")
    p.add_argument("--batch", action="store_true",
                   help="test all of a target's workers combined at once; bisect on failure")
    comp.attach(p.add_argument("--into", metavar="BRANCH",
                               help="land into BRANCH instead of each worker's base"),
                comp.branches)
    p.add_argument("--dry-run", action="store_true",
                   help="show the queue and what conflicts; run no gate, move nothing")
    _json(p)


def _prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="say what would be removed")
    comp.attach(p.add_argument("--older-than", metavar="DURATION",
                               help="only workers created longer ago (30m, 12h, 7d, 2w)"),
                comp.nothing)
    _json(p)


def _diff(p: argparse.ArgumentParser) -> None:
    import argparse

    _worker_id(p)
    p.add_argument("options", nargs=argparse.REMAINDER, metavar="GIT-DIFF-OPTION",
                   help="passed to git diff (--stat, --name-only, -w…)")


def _conflicts(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="*", metavar="ID",
                               help="only pairs involving these workers"), comp.worker_ids)
    _json(p)


def _doctor(p: argparse.ArgumentParser) -> None:
    _json(p)
    p.add_argument("--hosts", action="store_true",
                   help="also check each worker.host.NAME over ssh: reachable, logged in, "
                        "git-worker there, the same remote")


def _publish(p: argparse.ArgumentParser) -> None:
    comp.attach(p.add_argument("ids", nargs="*", metavar="ID",
                               help="only these workers (default: every one of this clone)"),
                comp.worker_ids)


def _fetch(p: argparse.ArgumentParser) -> None:
    p.add_argument("--branches", action="store_true",
                   help="also fetch the workers' branches (into refs/remotes/REMOTE/)")
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


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


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
    "start": ([], "start the agent of a ready, stopped, failed or vanished worker", _start),
    "prompt": ([], "print the prompt a worker's agent received", _worker_id),
    "review": ([], "run the review gate on a worker", _review),
    "merge": ([], "land a worker's branch in its base branch", _merge),
    "sync": ([], "bring workers up to date with the branch they land in", _sync),
    "land": ([], "merge queue: land workers whose combined result passes the gate", _land),
    "diff": ([], "a worker's change against the branch it would land in", _diff),
    "prune": ([], "remove every worker whose work has landed", _prune),
    "conflicts": ([], "forecast which workers' branches collide", _conflicts),
    "publish": ([], "push this clone's workers (records, branches) to worker.remote",
                _publish),
    "fetch": ([], "fetch every host's workers from worker.remote", _fetch),
    "watch": ([], "a live dashboard of every worker, with keys for the loop", _watch),
    "hooks": ([], "install or remove the git hooks that protect workers", _hooks),
    "doctor": ([], "check git, agents, tracker, gate, remote and settings", _doctor),
    "completion": ([], "print the shell completion script", _completion),
    "version": ([], "version, install location, python, dulwich and argcomplete",
                _no_arguments),
}
_COMMAND_OF = {alias: name for name, (aliases, _, _) in _COMMANDS.items()
               for alias in (name, *aliases)}


# The command lines read without argparse (plain_options): command -> (the words that name
# it, its flags — spelled out in full, each setting one keyword to one value —, its options
# that take a value — spelled out in full, the value the next word: the keyword it sets
# and whether it is appended to a list —, the keywords' defaults, whether it takes worker
# or task ids). `list` is the command run most often, by scripts and dashboards; `rm` and
# `spawn` are the ones timed against git's own (`spawn ID -d TEXT` too).
_PLAIN: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, bool]],
                        dict[str, tuple[str, bool]], dict[str, Any], bool]] = {
    "list": (("list", "ls"),
             {"--json": ("as_json", True), "--all": ("show_all", True),
              "--size": ("size", True), "--fetch": ("fetch", True)},
             {},
             {"as_json": False, "show_all": False, "size": False, "fetch": False},
             False),
    "rm": (("rm", "remove"),
           {"--merged": ("merged", True), "-f": ("force", True), "--force": ("force", True),
            "--keep-branch": ("keep_branch", True)},
           {},
           {"merged": False, "force": False, "keep_branch": False},
           True),
    "spawn": (("spawn",),
              {"--no-fetch": ("fetch", False), "--noFetch": ("fetch", False),
               "--no-launch": ("launch", False), "--dry-run": ("dry_run", True),
               "--json": ("json", True), "--queue": ("queue", True),
               "--review": ("review", True), "--no-review": ("review", False)},
              {"-t": ("more_ids", True), "--task": ("more_ids", True),
               "-d": ("description", False), "--description": ("description", False),
               "-f": ("base", False), "--from": ("base", False), "--fromBranch": ("base", False),
               "-a": ("agent", False), "--agent": ("agent", False),
               "-m": ("model", False), "--model": ("model", False), "--on": ("on", False)},
              {"more_ids": [], "description": None, "base": None, "fetch": True,
               "agent": None, "model": None, "launch": True, "dry_run": False, "json": False,
               "queue": False, "review": None, "on": None},
              True),
}


def plain_options(arguments: list[str]) -> tuple[str, dict[str, Any]] | None:
    """What argparse would make of a command of _PLAIN followed only by its flags and
    options spelled out in full (an option's value the next word, one that does not start
    with `-`) and, for one that takes ids, one run of ids (argparse takes no second run
    after an option): the command and its keyword arguments (``ids`` the ids). None for
    any other command line (abbreviations, --help, `--`, `--opt=value`, a word starting
    with `-` that is not a flag, flags that exclude each other, anything wrong), which
    argparse reads, and answers.

    Importing argparse (with re, gettext and locale) and building the parser cost ~9-12 ms
    of CPU (measured), a fifth of `list`. tests/test_cli.py keeps this and the parser in
    agreement.
    """
    command = next((name for name, (words, *_) in _PLAIN.items()
                    if arguments and arguments[0] in words), None)
    if command is None:
        return None
    _, flags, with_value, defaults, takes_ids = _PLAIN[command]
    options = dict(defaults)
    given: dict[str, bool] = {}
    ids: list[str] = []
    ids_ended = False
    words = iter(arguments[1:])
    for word in words:
        flag = flags.get(word)
        option = with_value.get(word)
        if flag is not None:
            name, value = flag
            if given.setdefault(name, value) != value:
                return None  # --review --no-review: argparse's error
            options[name] = value
            ids_ended = bool(ids)
        elif option is not None:
            name, append = option
            text = next(words, None)
            if text is None or text.startswith("-"):
                return None  # argparse's error, or its own reading of it
            options[name] = [*options[name], text] if append else text
            ids_ended = bool(ids)
        elif word.startswith("-") or not takes_ids or ids_ended:
            return None
        else:
            ids.append(word)
    if takes_ids:
        options["ids"] = ids
    return command, options


def _run_list(repo: Repo, *, as_json: bool, show_all: bool, size: bool, fetch: bool) -> int:
    from git_worker.commands import list as list_cmd

    return list_cmd.run(repo, as_json=as_json, show_all=show_all, size=size, fetch=fetch)


def _command_word(arguments: list[str]) -> str | None:
    """The subcommand a command line names (its first word), or None."""
    return arguments[0] if arguments and not arguments[0].startswith("-") else None


def _config(repo: Repo | None) -> Config:
    """The repository's settings (see Config.load: never a worker's worktree's); outside
    a repository, the user's own."""
    # Not imported for list, show and the other commands that read no setting.
    from git_worker.config import Config

    where = repo.common_dir if repo is not None else None
    if where not in _LOADED:  # read once a command: forwarding and rm both ask, say
        early = _EARLY.pop(_SETTINGS, None)
        config = None if early is None or repo is None else Config.read_here(early, repo)
        if config is None:
            started = _LOADING.pop(where, None)
            config = Config.load(where) if started is None else Config.read(started)
        _LOADED[where] = config
    return _LOADED[where]


def _start_config(repo: Repo) -> None:
    """Have git read the repository's settings while this process imports the command
    that needs them (_config() then waits for them), unless main() started it already."""
    from git_worker.config import Config

    if repo.common_dir not in _LOADED and repo.common_dir not in _LOADING \
            and _SETTINGS not in _EARLY:
        _LOADING[repo.common_dir] = Config.start_load(repo.common_dir)


# What a command reads of the repository first, started by main() at once, side by side,
# before argparse and the command's modules are imported: the command picks them up.
# Repo.start_discover, Config.start_load_here, Repo.start_ref_table of rm's refs:
_REPOSITORY, _SETTINGS, _RM_REFS = "repository", "settings", "rm's refs"
_EARLY_READS = {
    "spawn": (_REPOSITORY, _SETTINGS),
    "rm": (_REPOSITORY, _SETTINGS, _RM_REFS),
    "remove": (_REPOSITORY, _SETTINGS, _RM_REFS),
}
_EARLY: dict[str, Running] = {}  # what main() started of _EARLY_READS, until taken
_LOADED: dict[str | None, Config] = {}
_LOADING: dict[str | None, Running] = {}


def _start_early(command: str | None) -> None:
    """Start the git reads _EARLY_READS names for ``command``."""
    reads = _EARLY_READS.get(command or "", ())
    if not reads:
        return
    from git_worker import git, refnames  # not config: git.SETTINGS is what it reads
    from git_worker.repo import Repo

    if _REPOSITORY in reads:
        _EARLY[_REPOSITORY] = Repo.start_discover()
    if _SETTINGS in reads:
        started = git.start_config_here(git.SETTINGS)  # Config.start_load_here()
        if started is not None:
            _EARLY[_SETTINGS] = started
    if _RM_REFS in reads and not git.pinned():
        _EARLY[_RM_REFS] = Repo.start_ref_table(*refnames.RM_REFS)


def _end_early() -> None:
    """End and reap what main() started early and no command took (a usage error, an
    exception, a command that did not need it after all)."""
    while _EARLY:
        _EARLY.popitem()[1].stop()
    while _LOADING:
        _LOADING.popitem()[1].stop()


def _repo_if_any() -> Repo | None:
    from git_worker.errors import WorkerError
    from git_worker.repo import Repo

    try:
        return Repo.discover()
    except WorkerError:
        return None


def dispatch(args: Args) -> int:
    from git_worker.errors import UsageError
    from git_worker.repo import Repo

    command = {"ls": "list", "remove": "rm"}.get(args.command, args.command)
    if command == "completion":
        from git_worker.commands import completion

        return completion.run(args.shell)
    if command == "config":
        from git_worker.commands import config

        return config.run(_config(_repo_if_any()), as_json=args.json)
    if command == "doctor":
        from git_worker.commands import doctor

        return doctor.run(as_json=args.json, hosts=args.hosts)
    if command == "version":
        from git_worker.commands import version

        return version.run()
    discovering = _EARLY.pop(_REPOSITORY, None)
    repo = Repo.discover() if discovering is None else Repo.discovered(discovering)
    if _RM_REFS in _EARLY:  # rm's first ref_table takes it; _end_early reaps it otherwise
        from git_worker import refnames

        repo.started_ref_tables[refnames.RM_REFS] = _EARLY[_RM_REFS]
    if command == "spawn" and args.on:
        from git_worker.commands import remote

        return remote.spawn_on(repo, _config(repo), args.on, _spawn_argv(args), base=args.base)
    if command in ("logs", "stop", "start", "rm", "attach", "diff") \
            and not getattr(args, "all", False) \
            and not getattr(args, "merged", False):
        from git_worker.commands import remote

        ids = args.ids if command in ("stop", "start", "rm") else [args.id]
        code = remote.forward(repo, _config(repo), ids, _forwarded_argv(command, args),
                              tty=command == "attach")
        if code is not None:
            return code
    if command == "spawn":
        _start_config(repo)  # git reads the settings while the command is imported
        from git_worker.commands import spawn

        return spawn.run(repo, _config(repo), ids=[*args.ids, *args.more_ids],
                         description=args.description, base=args.base, fetch=args.fetch,
                         agent=args.agent, model=args.model, launch=args.launch,
                         dry_run=args.dry_run, as_json=args.json, queue=args.queue,
                         review=args.review)
    if command == "list":
        return _run_list(repo, as_json=args.json, show_all=args.all, size=args.size,
                         fetch=args.fetch)
    if command == "publish":
        from git_worker.commands import publish

        return publish.run(repo, _config(repo), args.ids)
    if command == "fetch":
        from git_worker.commands import fetch

        return fetch.run(repo, _config(repo), branches=args.branches)
    if command == "show":
        from git_worker.commands import show

        return show.run(repo, args.id, as_json=args.json, history=args.history)
    if command == "rm":
        if args.merged:
            if args.force or args.keep_branch:
                raise UsageError("--merged removes only what is safe to remove: it takes "
                                 "neither --force nor --keep-branch")
            from git_worker.commands import prune

            return prune.run(repo, ids=args.ids or None, older_than=None, dry_run=False,
                             as_json=False)
        if not args.ids:
            raise UsageError("name the workers to remove (git worker rm ID…), or pass --merged")
        from git_worker.commands import rm

        return rm.run(repo, args.ids, force=args.force, keep_branch=args.keep_branch,
                      config=_config(repo))
    if command == "prune":
        from git_worker.commands import prune

        return prune.run(repo, older_than=args.older_than, dry_run=args.dry_run,
                         as_json=args.json)
    if command == "sync":
        from git_worker.commands import sync

        return sync.run(repo, _config(repo), args.ids, rebase=args.rebase, agent=args.agent)
    if command == "land":
        from git_worker.commands import land

        return land.run(repo, _config(repo), args.ids, all_workers=args.all, batch=args.batch,
                        into=args.into, dry_run=args.dry_run, as_json=args.json)
    if command == "diff":
        from git_worker.commands import diff

        return diff.run(repo, args.id, args.options)
    if command == "fsck":
        from git_worker.commands import fsck

        return fsck.run(repo, _config(repo), repair=args.repair, as_json=args.json)
    if command == "logs":
        from git_worker.commands import logs

        return logs.run(repo, args.id, follow=args.follow, lines=args.lines)
    if command == "attach":
        from git_worker.commands import attach

        return attach.run(repo, args.id)
    if command == "stop":
        from git_worker.commands import stop

        return stop.run(repo, args.ids, stop_all=args.all)
    if command == "start":
        from git_worker.commands import start

        return start.run(repo, _config(repo), args.ids, agent=args.agent, model=args.model,
                         queue=args.queue)
    if command == "prompt":
        from git_worker.commands import prompt

        return prompt.run(repo, args.id)
    if command == "review":
        from git_worker.commands import review

        return review.run(repo, _config(repo), args.id, force=args.force)
    if command == "merge":
        from git_worker.commands import merge

        return merge.run(repo, _config(repo), args.id, squash=args.squash, into=args.into,
                         force=args.force)
    if command == "conflicts":
        from git_worker.commands import conflicts

        return conflicts.run(repo, _config(repo), ids=args.ids, as_json=args.json)
    if command == "watch":
        from git_worker.commands import watch

        return watch.run(repo, show_all=args.all, once=args.once)
    if command == "hooks":
        from git_worker.commands import hooks

        return hooks.run(repo, action=args.action)
    raise AssertionError(f"unhandled command {command}")


def _spawn_argv(args: Args) -> list[str]:
    """spawn's command line again, for the host it runs on (--on and --from left out: see
    remote.spawn_on)."""
    argv = [*args.ids, *(f"--task={i}" for i in args.more_ids)]
    for flag, value in (("--description", args.description),
                        ("--agent", args.agent), ("--model", args.model)):
        if value is not None:
            argv.append(f"{flag}={value}")
    for flag, on in (("--no-fetch", not args.fetch), ("--no-launch", not args.launch),
                     ("--dry-run", args.dry_run), ("--json", args.json),
                     ("--queue", args.queue), ("--review", args.review is True),
                     ("--no-review", args.review is False)):
        if on:
            argv.append(flag)
    return argv


def _forwarded_argv(command: str, args: Args) -> list[str]:
    """logs, stop, start, rm, attach or diff as given, for the host that owns them."""
    if command == "logs":
        return ["logs", args.id, *(["--follow"] if args.follow else []),
                *([f"--lines={args.lines}"] if args.lines is not None else [])]
    if command == "stop":
        return ["stop", *args.ids]
    if command == "start":
        return ["start", *args.ids, *([f"--agent={args.agent}"] if args.agent else []),
                *([f"--model={args.model}"] if args.model else []),
                *(["--queue"] if args.queue else [])]
    if command == "attach":
        return ["attach", args.id]
    if command == "diff":
        return ["diff", args.id, *args.options]
    return ["rm", *args.ids, *(["--force"] if args.force else []),
            *(["--keep-branch"] if args.keep_branch else [])]


def run() -> NoReturn:
    """The command line's entry point (the launcher, `python -m git_worker`, pip's console
    script): main(), then out at once.

    Python's own exit takes every module and object apart one by one, ~7 ms of every
    command (measured: rm of a clean worker 101.5 → 94.3 ms, median of 20 each, run in
    turn), for nothing the process still needs: git-worker closes every file it writes
    (`with`) and waits for every child it starts. What would still matter runs first:
    atexit functions (a library's), and the standard streams are flushed. Any thread
    still running (watch's, say) gets Python's normal exit, which waits for it."""
    code = main()
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # `git worker list | head`: the reader is gone, nothing is lost
            pass
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    if "_ARGCOMPLETE" in os.environ and argv is None:
        comp.complete(build_parser)  # answers the shell and exits; see completion.py
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        return _main(arguments)
    finally:
        _end_early()


def _main(arguments: list[str]) -> int:
    _start_early(_command_word(arguments))  # git reads while argparse works
    plain = plain_options(arguments)  # list's, rm's and spawn's own: no argparse
    # --help opens the manual: what `git worker --help` does (git runs `man git-worker`).
    args = (None if plain is not None or arguments[:1] == ["--help"]
            else build_parser(_command_word(arguments)).parse_args(arguments))
    from git_worker.errors import UsageError, WorkerError, from_os_error
    from git_worker.output import visible

    try:
        if plain is not None and plain[0] == "list":
            from git_worker.repo import Repo

            return _run_list(Repo.discover(), **plain[1])
        if plain is not None:
            return dispatch(Plain(command=plain[0], **plain[1]))
        if args is None:
            from git_worker import manual

            # Its page missing is a WorkerError, as any shipped file's.
            return manual.show(build_parser)
        return dispatch(args)
    except UsageError as e:
        print(f"usage error: {visible(e, lines=True)}", file=sys.stderr)
        return EXIT_USAGE
    except WorkerError as e:
        print(f"error: {visible(e, lines=True)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # `git worker list | head`: not an error
        return EXIT_OK
    except OSError as e:
        world = from_os_error(e)  # a permission, a full or read-only disk: not a bug
        if world is None:
            return _bug()
        print(f"error: {visible(world, lines=True)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception:
        return _bug()


def _bug() -> int:
    """Report the exception being handled as a bug (exit 3)."""
    if os.environ.get("GIT_WORKER_DEBUG"):
        import traceback

        traceback.print_exc()
    else:
        from git_worker.output import visible

        exc = sys.exc_info()[1]
        print(f"git-worker: internal error: {type(exc).__name__}: {visible(exc, lines=True)}\n"
              "This is a bug; please report it with the output of the same command run "
              "with GIT_WORKER_DEBUG=1.", file=sys.stderr)
    return EXIT_BUG
