"""Exit codes and the shape of errors: 0 ok, 1 failed, 2 usage, 3 internal, 130 interrupted."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import GitRepo, Sandbox
from git_worker import cli


def test_usage_errors_exit_2(repo: GitRepo) -> None:
    r = repo.worker("spawn", "--bogus")
    assert r.code == 2 and "unrecognized arguments: --bogus" in r.err
    assert repo.worker("frobnicate").code == 2
    assert repo.worker().code == 2


def test_the_quick_exit_still_flushes_the_output_and_runs_atexit_functions(
        repo: GitRepo, tmp_path: pytest.TempPathFactory) -> None:
    """cli.run ends the process with os._exit (Python's teardown of every module costs
    ~7 ms): what was printed reaches the pipe, the exit code is main()'s, and a library's
    atexit function still runs."""
    site = tmp_path / "site"  # type: ignore[operator]
    site.mkdir()
    ran = tmp_path / "atexit-ran"  # type: ignore[operator]
    (site / "sitecustomize.py").write_text(
        "import atexit\n"
        f"atexit.register(lambda: open({str(ran)!r}, 'w').write('ran'))\n")
    # PYTHONUNBUFFERED empty (unset, for Python): stdout to a pipe is block-buffered, as a
    # user's is, so that output left unflushed by os._exit would be lost here.
    env = {"PYTHONPATH": str(site), "PYTHONUNBUFFERED": ""}
    repo.ok("spawn", "--no-launch", *[f"w{n}" for n in range(30)])
    listed = repo.worker("list", "--json", env=env)
    assert listed.code == 0 and len(json.loads(listed.out)) == 30  # all of it, flushed
    settings = repo.worker("config", "--json", env=env)  # print()ed, left to the exit
    assert settings.code == 0 and any(s["key"] == "worker.agent"
                                      for s in json.loads(settings.out))
    assert ran.read_text() == "ran"
    ran.unlink()
    failed = repo.worker("show", "nope", env=env)
    assert (failed.code, failed.err) == (1, "error: no worker 'nope'\n"
                                            "hint: git worker list shows the workers\n")
    assert ran.read_text() == "ran"


def test_expected_failures_exit_1_without_traceback(repo: GitRepo) -> None:
    r = repo.worker("show", "nope")
    assert r.code == 1
    assert r.err == "error: no worker 'nope'\nhint: git worker list shows the workers\n"


def test_no_ids_is_an_error_with_a_hint(repo: GitRepo) -> None:
    r = repo.worker("spawn")
    assert r.code == 1 and "no task ids given" in r.err


def test_old_flag_spellings_still_work(repo: GitRepo) -> None:
    repo.ok("spawn", "-t", "w1", "--fromBranch", "main", "--noFetch", "--no-launch")
    assert repo.record("w1")["base"]["name"] == "main"


def test_internal_errors_exit_3_ask_for_a_report_and_still_roll_back(repo: GitRepo) -> None:
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.worktree:crash"})
    assert r.code == 3
    assert r.err.startswith("git-worker: internal error: RuntimeError: failpoint spawn.worktree")
    assert "GIT_WORKER_DEBUG=1" in r.err and "Traceback" not in r.err
    assert repo.snapshot() == before
    r = repo.worker("spawn", "w1", "--no-launch", env={
        "GIT_WORKER_FAILPOINTS": "spawn.worktree:crash", "GIT_WORKER_DEBUG": "1"})
    assert r.code == 3 and "Traceback (most recent call last)" in r.err


def test_a_record_pointing_at_a_missing_object_is_reported(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    (repo.path / ".git" / "refs" / "workers" / "w1").write_text("1" * 40 + "\n")
    listed = json.loads(repo.ok("list", "--json").out)
    assert listed[0]["state"] == "corrupt"
    assert "missing object" in listed[0]["problems"][0]
    r = repo.worker("show", "w1")
    assert r.code == 1 and "the registry record of 'w1' is unreadable" in r.err


# --- list's fast path: its command lines read without argparse -------------------------------

_LIST_WORDS = ["--json", "--all", "--size", "--fetch", "--js", "--al", "--s", "-h", "--help",
               "--", "--json=1", "--all=", "-j", "--JSON", "--no-json", "x", "w1", "", "-",
               "--fetch=no", "--version", "list", "ls"]


def _parse(arguments: list[str]) -> argparse.Namespace | str:
    """What the real parser makes of a command line, or its refusal (usage, help) as
    "exit CODE: what it printed"."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return cli.build_parser().parse_args(arguments)
    except SystemExit as e:
        return f"exit {e.code}: {err.getvalue()}"


def _parsed(command: str, arguments: list[str],
            rename: dict[str, str] | None = None) -> tuple[str, dict[str, object]] | str:
    """What the real parser makes of a command line, as plain_options says it: ``command``
    and its keyword arguments (argparse's names, but those ``rename`` maps to the ones
    cli.dispatch passes), or the parser's refusal (usage, help), or the other command."""
    args = _parse(arguments)
    if isinstance(args, str):
        return args
    options = vars(args)
    del options["version"]  # `git worker --version`'s, not the command's
    name = options.pop("command")
    if cli._COMMAND_OF.get(name) != command:
        return f"command {name}"
    return command, {(rename or {}).get(key, key): value for key, value in options.items()}


def _parsed_list(arguments: list[str]) -> tuple[str, dict[str, object]] | str:
    return _parsed("list", arguments, {"json": "as_json", "all": "show_all"})


@settings(max_examples=150, deadline=None)
@given(command=st.sampled_from(["list", "ls", "lis", "l", "show", "--json", "-h", "fsck"]),
       rest=st.lists(st.sampled_from(_LIST_WORDS), max_size=5))
def test_list_fast_path_reads_only_what_the_parser_reads_alike(command: str,
                                                               rest: list[str]) -> None:
    """A command line the fast path takes is one the parser takes too, with the same
    options; everything else (abbreviations, help, errors) is left to the parser."""
    fast = cli.plain_options([command, *rest])
    if fast is not None:
        assert fast == _parsed_list([command, *rest]), [command, *rest]


@pytest.mark.parametrize("arguments", [
    ["list"], ["ls"], ["list", "--json"], ["ls", "--all", "--json", "--all"],
    ["list", "--size", "--fetch", "--json", "--all"]])
def test_list_fast_path_takes_lists_spelled_out(arguments: list[str]) -> None:
    assert cli.plain_options(arguments) == _parsed_list(arguments)


def test_list_fast_path_knows_every_option_of_the_parsers_list() -> None:
    """An option added to list's parser and not to the fast path's table would be refused
    by the fast path forever (argparse would answer): the two tables must be one."""
    parser = cli.build_parser("list")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = {s for a in sub.choices["list"]._actions for s in a.option_strings} - {"-h", "--help"}
    words, table, with_value, defaults, takes_ids = cli._PLAIN["list"]
    assert flags == set(table) and not with_value and not takes_ids
    for action in sub.choices["list"]._actions:
        assert isinstance(action, argparse._StoreTrueAction | argparse._HelpAction), action


def test_list_command_lines_the_fast_path_leaves_get_the_parsers_answer(repo: GitRepo) -> None:
    repo.ok("spawn", "--no-launch", "w1")
    r = repo.worker("list", "--bogus")
    assert r.code == 2 and r.out == ""
    assert r.err.startswith("usage: git worker") and "unrecognized arguments: --bogus" in r.err
    r = repo.worker("ls", "--json=1")
    assert r.code == 2 and "ignored explicit argument '1'" in r.err
    r = repo.worker("list", "w1")
    assert r.code == 2 and "unrecognized arguments: w1" in r.err
    help_text = repo.ok("list", "-h").out
    assert help_text.startswith("usage: git worker list [-h] [--json]") and "--fetch" in help_text
    assert repo.ok("ls", "--js").out == repo.ok("list", "--json").out  # an abbreviation
    assert [w["id"] for w in json.loads(repo.ok("ls", "--json").out)] == ["w1"]


# --- rm's fast path: the same table (cli._PLAIN), with worker ids ----------------------------

_RM_WORDS = ["--merged", "-f", "--force", "--keep-branch", "--forc", "--keep", "-h", "--help",
             "--", "--force=1", "-F", "-fx", "-x", "w1", "w2", "", "-", "-1", "rm", "list",
             "a b", "--merged="]


@settings(max_examples=300, deadline=None)
@given(command=st.sampled_from(["rm", "remove", "rem", "r", "--force", "show"]),
       rest=st.lists(st.sampled_from(_RM_WORDS), max_size=6))
def test_rm_fast_path_reads_only_what_the_parser_reads_alike(command: str,
                                                             rest: list[str]) -> None:
    fast = cli.plain_options([command, *rest])
    if fast is not None:
        assert fast == _parsed("rm", [command, *rest]), [command, *rest]


@pytest.mark.parametrize("arguments", [
    ["rm"], ["rm", "w1"], ["remove", "w1", "w2", "--force"], ["rm", "-f", "--keep-branch", "w1"],
    ["rm", "--merged"], ["rm", "--merged", "w1", "w2"], ["rm", "w1", "-f", "-f"]])
def test_rm_fast_path_takes_rms_spelled_out(arguments: list[str]) -> None:
    assert cli.plain_options(arguments) == _parsed("rm", arguments)


@pytest.mark.parametrize("arguments", [["rm", "w1", "--force", "w2"], ["rm", "--forc", "w1"],
                                       ["rm", "-fx"], ["rm", "--", "w1"], ["rm", "-1"]])
def test_rm_command_lines_the_fast_path_leaves_to_the_parser(arguments: list[str]) -> None:
    assert cli.plain_options(arguments) is None


def test_rm_fast_path_knows_every_option_of_the_parsers_rm() -> None:
    parser = cli.build_parser("rm")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = {s for a in sub.choices["rm"]._actions for s in a.option_strings} - {"-h", "--help"}
    words, table, with_value, defaults, takes_ids = cli._PLAIN["rm"]
    assert flags == set(table) and takes_ids and not with_value
    assert defaults == {d: False for d, _ in table.values()}
    assert set(words) == {"rm", *sub.choices["rm"].prog.split()[-1:], "remove"}
    for action in sub.choices["rm"]._actions:
        assert isinstance(action, argparse._StoreTrueAction | argparse._HelpAction) \
            or action.dest == "ids", action


# What main() imports (the interpreter's start-up, a .pth file's, left out).
_IMPORTED_BY_MAIN = """
import sys
before = set(sys.modules)
sys.path.insert(0, sys.argv[1])
from git_worker.cli import main
code = main(sys.argv[2:])
print(" ".join(sorted(set(sys.modules) - before)), file=sys.stderr)
raise SystemExit(code)
"""


def _imported_by(repo: GitRepo, argv: list[str]) -> set[str]:
    """The modules `git worker ARGV` imports (cli.main run in a fresh interpreter)."""
    from conftest import CHECKOUT

    r = repo.sandbox.run(sys.executable, "-c", _IMPORTED_BY_MAIN, CHECKOUT / "lib", *argv,
                         cwd=repo.path)
    assert r.code == 0, r
    return set(r.err.split("\n")[-2].split())


def test_rm_takes_the_fast_path_and_leaves_argparse_alone(repo: GitRepo) -> None:
    """rm of a clean worker imports nothing it does not need: no argparse (nor gettext,
    locale), subprocess, threading, signal, hashlib or shlex, nor json and re (the record
    `removing` and the lease store are written by compact_json), nor enum, nor contextlib
    and the functools and collections it brings (~3 ms: the locks and the transaction are
    classes)."""
    repo.ok("spawn", "--no-launch", "w1", "w2", "w3")
    for argv, parsed in ((["rm", "w1"], False), (["remove", "-f", "w2"], False),
                         (["rm", "--forc", "w3"], True)):
        modules = _imported_by(repo, argv)
        assert ("argparse" in modules) is parsed, argv
        if not parsed:
            assert not modules & {"gettext", "locale", "subprocess", "threading", "signal",
                                  "hashlib", "shlex", "json", "re", "enum", "contextlib",
                                  "functools", "collections", "types"}, (argv, sorted(modules))


def test_rm_usage_errors_are_the_parsers_and_dispatchs_on_both_paths(repo: GitRepo) -> None:
    repo.ok("spawn", "--no-launch", "w1")
    r = repo.worker("rm", "w1", "--force", "w2")
    assert r.code == 2 and "unrecognized arguments: w2" in r.err and r.out == ""
    for argv in (["rm"], ["rm", "--forc"]):  # fast path, and the parser's (an abbreviation)
        r = repo.worker(*argv)
        assert r.code == 2 and r.err == ("usage error: name the workers to remove (git worker "
                                         "rm ID…), or pass --merged\n"), argv
    for argv in (["rm", "--merged", "-f"], ["rm", "--merged", "--keep"]):
        r = repo.worker(*argv)
        assert r.code == 2 and "--merged removes only what is safe" in r.err, argv
    assert (repo.workers_dir / "w1").exists()


# --- spawn's fast path: its flags, its options with their values, and task ids --------------

_SPAWN_WORDS = ["--no-launch", "--no-fetch", "--noFetch", "--dry-run", "--json", "--queue",
                "--review", "--no-review", "--no-l", "--rev", "-d", "text", "--description=x",
                "-a", "--agent", "-m", "--from", "-f", "main", "--on", "-t", "--task", "w1",
                "w2", "", "-", "--", "-h", "--json=1", "-1", "--description", "--model",
                "--fromBranch", "-dtext", "--desc", "a b", "-x"]


@settings(max_examples=600, deadline=None)
@given(command=st.sampled_from(["spawn", "spaw", "sp", "--json", "rm"]),
       rest=st.lists(st.sampled_from(_SPAWN_WORDS), max_size=7))
def test_spawn_fast_path_reads_only_what_the_parser_reads_alike(command: str,
                                                                rest: list[str]) -> None:
    fast = cli.plain_options([command, *rest])
    if fast is not None and fast[0] == "spawn":
        assert fast == _parsed("spawn", [command, *rest]), [command, *rest]


@pytest.mark.parametrize("arguments", [
    ["spawn"], ["spawn", "w1"], ["spawn", "--no-launch", "w1", "w2"],
    ["spawn", "w1", "--no-fetch", "--noFetch", "--json", "--queue", "--dry-run"],
    ["spawn", "--review", "w1", "--review"], ["spawn", "--no-review", "w1"],
    ["spawn", "w1", "-d", "the task"], ["spawn", "-d", "", "w1", "w2"],
    ["spawn", "-t", "w1", "--task", "w2", "w3", "-a", "claude", "--model", "opus"],
    ["spawn", "w1", "--from", "main", "-f", "dev", "--on", "box", "--description", "x"]])
def test_spawn_fast_path_takes_spawns_spelled_out(arguments: list[str]) -> None:
    assert cli.plain_options(arguments) == _parsed("spawn", arguments)


@pytest.mark.parametrize("arguments", [
    ["spawn", "--review", "--no-review", "w1"], ["spawn", "w1", "-d", "-x"],
    ["spawn", "w1", "-d"], ["spawn", "w1", "-dtext"], ["spawn", "w1", "--desc", "text"],
    ["spawn", "w1", "--agent=codex"], ["spawn", "--no-l", "w1"], ["spawn", "w1", "--json", "w2"],
    ["spawn", "w1", "-d", "text", "w2"], ["spawn", "--", "w1"]])
def test_spawn_command_lines_the_fast_path_leaves_to_the_parser(arguments: list[str]) -> None:
    assert cli.plain_options(arguments) is None


def test_spawn_fast_path_table_is_the_parsers() -> None:
    """Every flag of the table is the parser's, setting the same keyword to the same value;
    every option with a value, the parser's, storing (or appending) it under the same
    keyword; the defaults are the parser's; the table leaves out -h alone."""
    parser = cli.build_parser("spawn")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    actions = sub.choices["spawn"]._actions
    words, table, with_value, defaults, takes_ids = cli._PLAIN["spawn"]
    assert words == ("spawn",) and takes_ids
    parsed = _parsed("spawn", ["spawn"])
    assert isinstance(parsed, tuple)
    assert {**defaults, "ids": []} == parsed[1]
    for action in actions:
        for flag in action.option_strings:
            if flag in table:
                assert isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
                assert table[flag] == (action.dest, action.const), flag
            elif flag in with_value:
                assert isinstance(action, argparse._StoreAction | argparse._AppendAction)
                assert action.nargs is None, flag  # one value
                appends = isinstance(action, argparse._AppendAction)
                assert with_value[flag] == (action.dest, appends), flag
            else:
                assert flag in ("-h", "--help"), flag


def test_spawn_takes_the_fast_path_and_leaves_argparse_alone(repo: GitRepo) -> None:
    """spawn --no-launch imports neither argparse (nor gettext, locale) nor subprocess,
    shlex or hashlib, nor re, enum, json, threading or contextlib (with functools and
    collections) — a few ms each before the checkout starts —, with a task text or not; an
    abbreviation goes to the parser, as before."""
    for argv, parsed in ((["spawn", "--no-launch", "w1"], False),
                         (["spawn", "w2", "--no-launch", "-d", "a task"], False),
                         (["spawn", "w3", "--no-l"], True)):
        modules = _imported_by(repo, argv)
        assert ("argparse" in modules) is parsed, argv
        if not parsed:
            assert not modules & {"gettext", "locale", "subprocess", "shlex", "hashlib", "re",
                                  "enum", "json", "threading", "contextlib", "functools",
                                  "collections", "types"}, (argv, sorted(modules))
    assert {w["id"] for w in json.loads(repo.ok("list", "--json").out)} == {"w1", "w2", "w3"}
    assert "a task" in repo.ok("prompt", "w2").out


def test_spawn_usage_errors_are_the_parsers_on_both_paths(repo: GitRepo) -> None:
    r = repo.worker("spawn", "--review", "--no-review", "w1")
    assert r.code == 2 and "not allowed with argument" in r.err and r.out == ""
    r = repo.worker("spawn", "w1", "--no-launch", "w2")
    assert r.code == 2 and "unrecognized arguments: w2" in r.err
    assert repo.refs("refs/workers/") == {}


def test_list_outside_a_repository_fails_alike_on_both_paths(sandbox: Sandbox) -> None:
    fast, parsed = sandbox.run("git", "worker", "list"), sandbox.run("git", "worker", "ls", "--js")
    assert fast.code == parsed.code == 1 and fast.err == parsed.err
    assert fast.err.startswith("error: not a git repository")


def test_list_takes_the_fast_path_and_leaves_argparse_alone(repo: GitRepo) -> None:
    """The point of the fast path: `list` never imports argparse (nor the gettext and
    locale argparse brings), while a command line it leaves to the parser does; nor
    collections (~2 ms; typing names are imported for the type checker only)."""
    repo.ok("spawn", "--no-launch", "w1")
    for argv, parsed in ((["list", "--json"], False), (["ls", "--all"], False),
                         (["list", "--js"], True)):
        modules = _imported_by(repo, argv)
        assert ("argparse" in modules) is parsed, argv
        if not parsed:
            assert not modules & {"collections", "contextlib", "functools"}, sorted(modules)
