"""Human output: aligned tables, colour only on a terminal and never with NO_COLOR, one
progress line per worker, durations in human units."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from conftest import CHECKOUT, GitRepo

sys.path.insert(0, str(CHECKOUT / "lib"))

from git_worker import output  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def on_terminal(repo: GitRepo, *args: str, env: dict[str, str] | None = None) -> str:
    """`git worker ARGS` with stdout and stderr on a pseudo-terminal; what it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(["git", "worker", *args], cwd=repo.path,
                            env={**repo.sandbox.env, "TERM": "xterm", **(env or {})},
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, data
    return data.decode().replace("\r\n", "\n")


def screen(raw: str) -> list[str]:
    """The lines as a terminal leaves them: colours gone, '\\r' + erase-line applied."""
    lines = []
    for line in raw.split("\n"):
        line = line.split("\r")[-1]
        lines.append(ANSI.sub("", line))
    return [ln for ln in lines if ln]


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (45, "45s"), (60, "1m"), (192, "3m 12s"), (3600, "1h"), (7500, "2h 5m"),
    (3 * 86400 + 4 * 3600 + 59, "3d 4h"), (86400, "1d"),
])
def test_durations_in_human_units(seconds: int, shown: str) -> None:
    assert output.duration(seconds) == shown


def test_list_is_coloured_on_a_terminal_and_aligned(repo: GitRepo) -> None:
    repo.ok("spawn", "a", "bb-long", "c", "--no-launch")
    raw = on_terminal(repo, "list")
    assert "\x1b[" in raw
    lines = screen(raw)
    assert lines[0].split() == ["ID", "STATE", "BRANCH", "BASE", "AHEAD", "REVIEW", "AGENT",
                                "AGE", "PATH"]
    column = lines[0].index("BRANCH")
    assert [ln[column:].split()[0] for ln in lines[1:]] == ["worker/a", "worker/bb-long",
                                                             "worker/c"]


def test_no_colour_with_no_color_or_off_a_terminal(repo: GitRepo) -> None:
    repo.ok("spawn", "a", "--no-launch")
    assert "\x1b" not in on_terminal(repo, "list", env={"NO_COLOR": "1"})
    assert "\x1b" not in repo.ok("list").out
    assert "\x1b" not in repo.ok("spawn", "b", "c", "--no-launch").out


def test_spawning_several_shows_one_progress_line_per_worker(repo: GitRepo) -> None:
    raw = on_terminal(repo, "spawn", "a", "bb", "c", "--no-launch")
    assert "spawning a..." in ANSI.sub("", raw)
    base = repo.git("rev-parse", "--short=7", "main")
    assert screen(raw) == [
        f"spawned a   worker/a   from main ({base})  ../repo.workers/a  [ready]",
        f"spawned bb  worker/bb  from main ({base})  ../repo.workers/bb  [ready]",
        f"spawned c   worker/c   from main ({base})  ../repo.workers/c  [ready]",
        "3 of 3 workers spawned; watch them with: git worker list",
    ]


def test_progress_is_not_written_to_a_pipe(repo: GitRepo) -> None:
    repo.git("branch", "worker/b")
    r = repo.worker("spawn", "a", "b", "--no-launch")
    assert r.code == 1
    assert "spawning" not in r.out
    assert r.out.splitlines()[-1] == "1 of 2 workers spawned; watch them with: git worker list"
    assert "error: b: branch worker/b already exists" in r.err


def _documented(section: str) -> set[str]:
    """The field names in the first column of the docs/output.md table under ``section``."""
    doc = (CHECKOUT / "docs" / "output.md").read_text()
    text = doc[doc.index(section):]
    text = text[:text.index("\n### ", 1)] if "\n### " in text[1:] else text
    first_cells = re.findall(r"^\| (`[^|]*?) \|", text, re.MULTILINE)
    return {name for cell in first_cells for name in re.findall(r"`([a-z_]+)`", cell)}


def test_json_output_is_documented_field_by_field(repo: GitRepo) -> None:
    import json

    repo.ok("spawn", "a", "--no-launch")
    record = repo.record("a")
    assert set(record) == _documented("### The worker record (`worker.json`)")
    shown = json.loads(repo.ok("show", "a", "--json").out)
    listed = json.loads(repo.ok("list", "--json").out)[0]
    derived = _documented("### `git worker list --json`")
    assert set(listed) == set(record) | derived == set(shown)
    spawned = json.loads(repo.ok("spawn", "b", "--no-launch", "--json").out)[0]
    assert set(spawned) == set(record)
    repo.git("branch", "worker/orphan")  # something for fsck to find
    fsck = json.loads(repo.worker("fsck", "--json").out)
    assert {k for f in fsck for k in f} == _documented("### `git worker fsck --json`")
    config = json.loads(repo.ok("config", "--json").out)
    assert {k for c in config for k in c} == _documented("### `git worker config --json`")


# --- list --json without json and re: the same text, the same errors ------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from git_worker import compact_json  # noqa: E402

_TEXT = st.text(alphabet=st.characters(codec=None), max_size=12)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        _TEXT | st.integers() | st.booleans() | st.none() | st.floats(), inner, max_size=4),
    max_leaves=12)


def _outcome(fn: object, arg: object) -> tuple[str, object]:
    try:
        return "value", fn(arg)  # type: ignore[operator]
    except Exception as e:  # noqa: BLE001 - the very error is what is compared
        return type(e).__name__, str(e)


@settings(max_examples=300, deadline=None)
@given(value=_VALUES | st.sets(st.integers(), max_size=2) | st.builds(object))
def test_compact_json_writes_what_json_writes(value: object) -> None:
    import json

    assert _outcome(compact_json.dumps, value) == _outcome(
        lambda v: json.dumps(v, ensure_ascii=False), value)


@settings(max_examples=300, deadline=None)
@given(value=_VALUES | st.tuples(_VALUES, _VALUES) | st.builds(object),
       indent=st.sampled_from([0, 2, 4]))
def test_compact_json_lays_out_what_json_lays_out(value: object, indent: int) -> None:
    """Records are written with an indent (hooks read them line by line): the same text as
    json's, and json's errors."""
    import json

    assert _outcome(lambda v: compact_json.dumps(v, indent=indent), value) == _outcome(
        lambda v: json.dumps(v, ensure_ascii=False, indent=indent), value)


@settings(max_examples=300, deadline=None)
@given(document=st.one_of(
    _VALUES.map(lambda v: __import__("json").dumps(v, ensure_ascii=False)),
    st.text(alphabet=' \t\n\r{}[]":,0123456789.-+eEtrufalsnNIy\\u\x00\x1f\xe9',
            max_size=20)),
       padding=st.sampled_from(["", " ", "\n\t", "\r\n "]),
       as_bytes=st.sampled_from(["str", "utf-8", "utf-16", "utf-8-sig"]))
def test_compact_json_reads_what_json_reads(document: str, padding: str, as_bytes: str) -> None:
    """Values (NaN included) and every error, word for word; bytes in any encoding json
    tells from their first bytes."""
    import json

    text = padding + document + padding
    try:
        data: str | bytes = text if as_bytes == "str" else text.encode(as_bytes)
    except UnicodeEncodeError:
        return
    ours, theirs = _outcome(compact_json.loads, data), _outcome(json.loads, data)
    assert ours[0] == theirs[0] and repr(ours[1]) == repr(theirs[1]), (data, ours, theirs)


def test_visible_escapes_every_control_as_the_regular_expression_did() -> None:
    controls = re.compile(r"[\x00-\x1f\x7f-\x9f]")
    but_lines = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}

    def escape(m: re.Match[str]) -> str:
        return named.get(m.group()) or f"\\x{ord(m.group()):02x}"

    text = "".join(chr(c) for c in range(0x200)) + "\udc9b\u009b\x1b[2J"
    assert output.visible(text) == controls.sub(escape, text)
    assert output.visible(text, lines=True) == but_lines.sub(escape, text)
    assert output.width("\x1b[31mred\x1b[0m ok") == 6 and output.width("plain") == 5


def test_compact_json_uses_the_c_codec_on_cpython() -> None:
    """Else the two tests above would compare json with itself."""
    assert sys.implementation.name != "cpython" or (
        compact_json._scan is not None and compact_json._encode is not None)


def test_a_failed_encode_leaves_no_marker_behind() -> None:
    """The C encoder keeps the address of each container it is inside of, and a failure
    leaves them: left there, a later container at one of those addresses would read as a
    cycle (and go to json, slower, for the rest of the process)."""
    for value in ({"a": [object()]}, [[{"b": {1, 2}}]]):
        with pytest.raises(TypeError):
            compact_json.dumps(value)
        assert compact_json._MARKERS == {}
    assert compact_json.dumps({"a": [[1]]}) == '{"a": [[1]]}'


_FRESH = """
import sys
sys.path.insert(0, sys.argv[1])
from git_worker import compact_json
for document in (b'{"a": [1, 2.5, null, true, "\\\\u00e9"]}', b'{"a": 1,}', b'[1] x', b'',
                 b'\\xef\\xbb\\xbf{}', b'"\\\\ud800"', b'{"a":' * 100000):
    try:
        print(repr(compact_json.loads(document)))
    except Exception as e:
        print(type(e).__name__, e)
for value in ([float("nan"), {1: 2, None: 3}], {"é": "\\x00"}, [object()]):
    try:
        print(compact_json.dumps(value))
    except Exception as e:
        print(type(e).__name__, e)
print("json" in sys.modules)
"""


def test_compact_json_answers_as_json_in_a_process_that_never_imported_json() -> None:
    """As `list` runs it: json not imported before (its errors are built from json's
    modules, which the C codec expects loaded)."""
    ran = subprocess.run([sys.executable, "-c", _FRESH, str(CHECKOUT / "lib")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    with_json = subprocess.run(
        [sys.executable, "-c", "import json; " + _FRESH.replace("compact_json.loads(document)",
                                                              "json.loads(document)")
         .replace("compact_json.dumps(value)", "json.dumps(value, ensure_ascii=False)"),
         str(CHECKOUT / "lib")], capture_output=True, text=True, check=True).stdout.splitlines()
    assert ran[:-1] == with_json[:-1]
    assert "JSONDecodeError Expecting property name enclosed in double quotes" in ran[1]


def test_a_record_is_written_without_importing_json() -> None:
    """Else the layout test above would compare json with itself (every answer json's)."""
    import json

    script = ("import sys; sys.path.insert(0, sys.argv[1])\n"
              "from git_worker import compact_json\n"
              "print(compact_json.dumps({'id': 'w1', 'leases': {'ports': [], 'slot': 1},"
              " 'task': {'title': 'é\\n\"x\"'}, 'pids': [1, 2.5, None, True]}, indent=2))\n"
              "print('json' in sys.modules)")
    ran = subprocess.run([sys.executable, "-c", script, str(CHECKOUT / "lib")],
                         capture_output=True, text=True, check=True).stdout
    written, imported = ran.rsplit("\n", 2)[:2]
    assert imported == "False"
    assert written == json.dumps({"id": "w1", "leases": {"ports": [], "slot": 1},
                                  "task": {"title": 'é\n"x"'}, "pids": [1, 2.5, None, True]},
                                 indent=2, ensure_ascii=False)
