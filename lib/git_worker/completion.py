"""Tab completion: argcomplete on the real parser, with a fast path for worker ids.

The shells (scripts in git_worker/shell/) speak argcomplete's protocol: they run
`git-worker` with _ARGCOMPLETE, COMP_LINE and COMP_POINT set and read the candidates from
file descriptor 8. `cli.main` hands such a run to `complete()` before importing anything.

Why a fast path: completion that is slow is worse than none. Measured on a 2-core machine,
Python starts in ~15-20 ms, `import argparse` adds ~10 ms and `import argcomplete` ~25 ms
more, so argcomplete alone cannot answer within 40 ms. The commonest completion, worker
ids (`git worker rm w-<TAB>`), is simple enough to answer without either: when the line is
`<command> [ID...] <partial id>` for a command in WORKER_ID_POSITIONALS and nothing in it
needs quoting or option parsing, `fast_answer` reads refs/workers/* straight from the
files (refscan) and writes exactly what argcomplete would. Everything else goes to
argcomplete with the real parser. tests/test_completion.py checks that the table matches
the parser and that both paths give the same answers.

Completers below are plain functions (argcomplete calls them with prefix=, action=,
parser=, parsed_args=) that import what they need when called.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping
    from typing import Any, NoReturn

# Subcommands whose positionals are all worker ids (diff: then git diff's options, which
# argcomplete answers): 1 = exactly one id, "+" = one or more, "*" = any number.
# Must match build_parser(); tests/test_completion.py::test_fast_table_matches_the_parser.
WORKER_ID_POSITIONALS: dict[str, int | str] = {
    "show": 1, "rm": "*", "remove": "*", "review": 1, "merge": 1, "conflicts": "*",
    "publish": "*",
    "logs": 1, "attach": 1, "stop": "*", "start": "+", "prompt": 1, "diff": 1,
    "land": "*", "sync": "+",
}

# Candidates and typed text made of these need no quoting in any shell and contain none
# of bash's COMP_WORDBREAKS (whose default has '@', '=' and ':'): the fast path's output is
# then the raw names. Worker ids use this alphabet (ids.py); '/' is for program paths.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/")

# Compatibility aliases of the tool git-worker replaces: accepted, never suggested.
HIDDEN_OPTIONS = ("--fromBranch", "--noFetch")

# --- the entry point ---------------------------------------------------------------------


def complete(build_parser: Callable[[], argparse.ArgumentParser]) -> NoReturn:
    """Answer one completion request (the shell set _ARGCOMPLETE) and exit."""
    answer = fast_answer(os.environ)
    if answer is not None:
        _emit(answer)
        os._exit(0)
    with_argcomplete(build_parser())
    os._exit(1)  # argcomplete exits itself; reaching here means the protocol failed


def with_argcomplete(parser: argparse.ArgumentParser, finder: Any = None,
                     **protocol: Any) -> None:
    """argcomplete's answer for the request in os.environ. Tests that compare it with
    fast_answer pass their own ``finder`` (a CompletionFinder) and ``protocol``
    (output_stream, exit_method)."""
    import argcomplete

    # Options only once the user types '-', like git's own completion: `rm <TAB>` lists
    # ids, not ids mixed with --force and --keep-branch.
    (finder or argcomplete.autocomplete)(parser, always_complete_options=False,
                                         exclude=HIDDEN_OPTIONS, **protocol)


def _emit(text: str) -> None:
    filename = os.environ.get("_ARGCOMPLETE_STDOUT_FILENAME")
    if filename:
        with open(filename, "w", encoding="utf-8") as f:
            f.write(text)
        return
    try:
        os.write(8, text.encode("utf-8", "surrogateescape"))
    except OSError:
        os._exit(1)  # no fd 8: not called by a completion script


def fast_answer(env: Mapping[str, str]) -> str | None:
    """What argcomplete would print for a worker-id completion; None when not that case."""
    try:
        line, point = env["COMP_LINE"], int(env["COMP_POINT"])
        start = int(env.get("_ARGCOMPLETE", "1")) - 1
    except (KeyError, ValueError):
        return None
    text = line[:point]
    words = text.split()
    current = "" if not text or text[-1].isspace() else words.pop()
    if not set("".join(words) + current) <= _PLAIN:
        return None  # quoting, '=' or ':' somewhere: argcomplete's lexer knows those rules
    words = words[start:]
    if len(words) < 2:
        return None  # completing the subcommand itself
    command, given = words[1], words[2:]
    nargs = WORKER_ID_POSITIONALS.get(command)
    if nargs is None or current.startswith("-") or any(w.startswith("-") for w in given):
        return None
    if nargs == 1 and given:
        return None  # the id is already there: nothing positional is left
    from git_worker import refscan

    git_dirs = refscan.git_dirs()
    if git_dirs is None:
        return None
    ids = refscan.names_under(git_dirs[1], "refs/workers/")
    if not all(set(i) <= _PLAIN for i in ids):
        return None
    matches = [i for i in ids if i.startswith(current)]
    shell = env.get("_ARGCOMPLETE_SHELL")
    if len(matches) == 1 and env.get("_ARGCOMPLETE_SUPPRESS_SPACE") != "1":
        matches = [matches[0] + " "]
    ifs = env.get("_ARGCOMPLETE_IFS", "\013")
    dfs = env.get("_ARGCOMPLETE_DFS")
    if dfs:
        matches = [m + dfs for m in matches]
    if shell == "zsh":
        matches = [m + ":" for m in matches]
    return ifs.join(matches)


# --- completers (argcomplete path) -----------------------------------------------------


def attach(action: argparse.Action, completer: Callable[..., object]) -> argparse.Action:
    """Give an argparse action its completer (argcomplete reads `.completer`)."""
    action.completer = completer  # type: ignore[attr-defined]
    return action


def worker_ids(prefix: str, **_: object) -> list[str]:
    from git_worker import refscan

    found = refscan.git_dirs()
    if found is None:
        return []
    return [i for i in refscan.names_under(found[1], "refs/workers/") if i.startswith(prefix)]


def agents(prefix: str, **_: object) -> dict[str, str]:
    """The adapters in the table plus custom ones from worker.agent.<name>.command (with the
    command as the description)."""
    from git_worker import git  # lazily: the worker-id fast path runs no git at all
    from git_worker.agents import TABLE

    found = {name: adapter.description for name, adapter in TABLE.items()}
    for key, value in git.settings_matching(r"^worker\.agent\..*\.command$"):
        name = key[len("worker.agent."):-len(".command")]
        if name:
            found[name] = value
    return {name: doc for name, doc in sorted(found.items()) if name.startswith(prefix)}


def branches(prefix: str, **_: object) -> list[str]:
    from git_worker import git  # lazily, as in agents()

    return [b for b in git.branch_names() if b.startswith(prefix) and not b.endswith("/HEAD")]


def ready_issues(prefix: str, **_: object) -> dict[str, str]:
    """Ready bd issues (id → title) for `spawn`; nothing when no tracker answers."""
    try:
        # On its own branch until merged: absent (ImportError) or older (AttributeError).
        from git_worker.tracker import (  # type: ignore[import-not-found,unused-ignore]
            ready_issues as read_ready,
        )
    except (ImportError, AttributeError):
        return {}
    try:
        found = read_ready(os.getcwd())
    except Exception:  # completion must never print a traceback into the user's prompt
        return {}
    return {str(i): str(title) for i, title in found if str(i).startswith(prefix)}


def nothing(prefix: str, **_: object) -> list[str]:
    """For free text (task descriptions, model names): no candidates, and no file names."""
    return []

