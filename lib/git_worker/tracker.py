"""Tasks from the bd (beads) issue tracker: read an issue, claim it, list the ready ones.

bd is always called the same careful way: an argv list (never a shell), stdin closed, from
the main worktree (every worktree shares one `.beads`), with a timeout, and one call at a
time per repository (bd's embedded database is single-writer: concurrent calls contend
for its lock). Any way bd can go wrong — missing, failing, hanging, answering garbage,
not knowing the id — becomes a WorkerError that names bd, raised before spawn creates
anything.
"""

from __future__ import annotations

import os

from git_worker import locks
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.git import clean_env
from git_worker.repo import Repo

# typing only for annotations: importing it costs every spawn ~3 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any


class Issue:
    """The fields of a bd issue that make a task (a plain class, not a dataclass: see
    spawn.Task)."""

    def __init__(self, id: str, title: str, description: str = "", design: str = "",
                 acceptance_criteria: str = "", notes: str = "", status: str = "",
                 assignee: str = "", issue_type: str = "", priority: int | None = None,
                 labels: list[str] | None = None) -> None:
        self.id = id
        self.title = title
        self.description = description
        self.design = design
        self.acceptance_criteria = acceptance_criteria
        self.notes = notes
        self.status = status
        self.assignee = assignee
        self.issue_type = issue_type
        self.priority = priority
        self.labels = [] if labels is None else labels


class NotFound(WorkerError):
    """bd answered, clearly: it has no such issue."""


def kind(config: Config, main_worktree: str) -> str:
    """'bd' or 'none': worker.tracker, else bd when it is on PATH and the repo has .beads/."""
    setting = config.string("worker.tracker")
    if setting is None or setting.lower() == "auto":
        if not os.path.isdir(os.path.join(main_worktree, ".beads")):
            return "none"
        import shutil  # only then: ~3 ms of a spawn before its checkout

        return "bd" if shutil.which("bd") else "none"
    if setting.lower() not in ("bd", "none"):
        raise WorkerError(f"bad value '{setting}' for worker.tracker: expected bd, none or auto",
                          hint="git config worker.tracker bd   (or none)")
    return setting.lower()


def show(repo: Repo, issue_id: str, *, timeout: float) -> Issue:
    """`bd show <id> --json`, in any of the shapes bd prints."""
    proc = _run(repo, ["show", issue_id, "--json"], timeout)
    if proc.returncode != 0:
        raise _failure(proc, f"bd show {issue_id}", issue_id)
    raw = _parse(proc.stdout, f"bd show {issue_id} --json")
    raw = _unwrap(raw)
    if isinstance(raw, list):
        if not raw:
            raise NotFound(f"bd has no issue '{issue_id}'", hint=_NOT_FOUND_HINT)
        # The issue asked for, wherever it is in the array (else the first, to report).
        raw = next((i for i in raw if isinstance(i, dict) and i.get("id") == issue_id), raw[0])
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise WorkerError(f"bd show {issue_id} --json answered JSON without an issue in it: "
                          f"{_excerpt(proc.stdout)}", hint=_BD_HINT)
    if raw.get("error"):
        raise _failure(proc, f"bd show {issue_id}", issue_id)
    if raw["id"] != issue_id:
        # Taking it would give this worker another issue's task, and claim that issue.
        raise WorkerError(f"bd show {issue_id} --json answered issue '{raw['id']}' instead",
                          hint=_BD_HINT)
    return _issue(raw)


def claim(repo: Repo, issue: Issue, *, actor: str,
          timeout: float) -> None:
    """Mark the issue in_progress and assigned to ``actor``.

    `bd update <id> --claim` is atomic and fails when someone else holds the issue. bd
    releases without --claim reject the flag; then status and assignee are set directly.
    bd's update prints its errors and may still exit 0, so success is judged by the
    updated issue it prints with --json.
    """
    proc = _run(repo, ["update", issue.id, "--claim", "--json"], timeout)
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0 and "unknown flag" in err and "--claim" in err:
        proc = _run(repo, ["update", issue.id, "--status", "in_progress",
                                    "--assignee", actor, "--json"], timeout)
    _check_updated(proc, issue.id, "claim")


def release(repo: Repo, issue: Issue, *, timeout: float) -> None:
    """Undo claim(): put status and assignee back as they were before."""
    proc = _run(repo, ["update", issue.id, "--status", issue.status or "open",
                                "--assignee", issue.assignee, "--json"], timeout)
    _check_updated(proc, issue.id, "release")


def close(repo: Repo, issue_id: str, reason: str, *, timeout: float) -> None:
    """`bd close ID -r REASON` (git worker merge, with worker.closeOnMerge)."""
    proc = _run(repo, ["close", issue_id, "-r", reason], timeout)
    if proc.returncode != 0:
        detail = _excerpt((proc.stderr or proc.stdout).strip()) or "(no output)"
        raise WorkerError(f"bd close {issue_id} failed (exit {proc.returncode}): {detail}",
                          hint=_BD_HINT)


def ready_issues(cwd: str) -> list[tuple[str, str]]:
    """(id, title) of the issues `bd ready --json` lists — for shell completion.

    Never raises: completion must stay quiet when bd is missing or unhappy.
    """
    try:
        proc = _run(Repo.discover(cwd), ["ready", "--json"], 5.0)
        if proc.returncode != 0:
            return []
        raw = _unwrap(_loads(proc.stdout))
    except (WorkerError, ValueError, OSError):
        return []
    if not isinstance(raw, list):
        return []
    return [(str(i["id"]), str(i.get("title") or "")) for i in raw
            if isinstance(i, dict) and i.get("id")]


def actor() -> str:
    """Who claims, the way bd names its actor: BD_ACTOR, else git's user.name, else $USER."""
    if os.environ.get("BD_ACTOR"):
        return os.environ["BD_ACTOR"]
    from git_worker import git

    return git.user_name() or os.environ.get("USER") or "git-worker"


# --- plumbing ----------------------------------------------------------------------------

_BD_HINT = ("check `bd` works here (bd doctor), or spawn without the tracker: "
            "git config worker.tracker none, and give the task with -d TEXT")
_NOT_FOUND_HINT = ("check the id (bd ready lists open issues); give the task text with -d "
                   "to start a worker for an id bd does not know")


def _run(repo: Repo, args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    import subprocess

    argv = ["bd", *args]
    with locks.tracker(repo.common_dir):
        try:
            return subprocess.run(argv, cwd=repo.main_worktree, env=clean_env(),
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, check=False)
        except FileNotFoundError:
            raise WorkerError("bd (beads) is not on PATH, and worker.tracker needs it",
                              hint="install beads, or: git config worker.tracker none") from None
        except subprocess.TimeoutExpired:
            raise WorkerError(f"'bd {' '.join(args)}' did not answer within {timeout:g} s",
                              hint=_BD_HINT + "; or raise git config worker.trackerTimeout"
                              ) from None
        except OSError as e:
            raise WorkerError(f"cannot run bd: {e.strerror or e}", hint=_BD_HINT) from None


def _loads(data: bytes) -> Any:
    """json.loads for bd's bytes; ValueError for anything that is not usable JSON.

    Invalid UTF-8 in a description must not cost the whole task: bd (Go) itself writes
    U+FFFD for such bytes, and so do we. Nesting deep enough to exhaust the parser's
    recursion is garbage, not a bug of ours.
    """
    import json

    try:
        return json.loads(data.decode("utf-8", errors="replace"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _parse(data: bytes, what: str) -> Any:
    try:
        return _loads(data)
    except ValueError:
        raise WorkerError(f"{what} answered something that is not JSON: {_excerpt(data)}",
                          hint=_BD_HINT) from None


def _unwrap(raw: Any) -> Any:
    """`{"schema_version":1,"data":…}` (BD_JSON_ENVELOPE) → its data."""
    if isinstance(raw, dict) and "schema_version" in raw and "data" in raw:
        return raw["data"]
    return raw


def _failure(proc: subprocess.CompletedProcess[bytes], what: str, issue_id: str) -> WorkerError:
    """bd exited non-zero: its JSON error on stderr (or stdout), else its text."""
    for stream in (proc.stderr, proc.stdout):
        try:
            err = _loads(stream)
        except ValueError:
            continue
        if isinstance(err, dict) and err.get("error"):
            if err.get("code") == "not_found" or "not found" in str(err["error"]).lower():
                return NotFound(f"bd has no issue '{issue_id}' ({err['error']})",
                                hint=_NOT_FOUND_HINT)
            return WorkerError(f"{what} failed: {err['error']}", hint=_BD_HINT)
    text = (proc.stderr or proc.stdout).decode(errors="replace").strip()
    if "not found" in text.lower() and issue_id in text:
        return NotFound(f"bd has no issue '{issue_id}' ({_excerpt(text.encode())})",
                        hint=_NOT_FOUND_HINT)
    detail = _excerpt(text.encode()) or "(no output)"
    return WorkerError(f"{what} exited {proc.returncode}: {detail}", hint=_BD_HINT)


def _check_updated(proc: subprocess.CompletedProcess[bytes], issue_id: str, what: str) -> None:
    err = proc.stderr.decode(errors="replace").strip()
    try:
        raw = _unwrap(_loads(proc.stdout)) if proc.stdout.strip() else None
    except ValueError:
        raw = None
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if proc.returncode == 0 and isinstance(raw, dict) and raw.get("id"):
        return
    detail = _excerpt(err.encode()) or _excerpt(proc.stdout) or "(no output)"
    raise WorkerError(f"bd refused to {what} '{issue_id}': {detail}",
                      hint="see who holds it: bd show " + issue_id if what == "claim" else _BD_HINT)


def _issue(raw: dict[str, Any]) -> Issue:
    def text(key: str) -> str:
        value = raw.get(key)
        return value if isinstance(value, str) else ""

    priority = raw.get("priority")
    labels = raw.get("labels")
    return Issue(
        id=raw["id"], title=text("title") or raw["id"], description=text("description"),
        design=text("design"), acceptance_criteria=text("acceptance_criteria"),
        notes=text("notes"), status=text("status"), assignee=text("assignee"),
        issue_type=text("issue_type"),
        priority=priority if isinstance(priority, int) else None,
        labels=[str(x) for x in labels] if isinstance(labels, list) else [],
    )


def _excerpt(data: bytes, limit: int = 200) -> str:
    text = data.decode(errors="replace").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"
