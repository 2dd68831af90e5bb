"""Is a recorded process still the one we started? (pid plus its start time)

A pid alone can be reused by an unrelated process after a reboot or a long time; the start
time from /proc tells them apart. Where /proc is missing, the answer degrades to
"a process with that pid exists".
"""

from __future__ import annotations

import os

# typing only for annotations: importing it costs ~5 ms on every list and show.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def start_time(pid: int) -> int | None:
    """When ``pid`` started (field 22 of its stat: clock ticks since boot); None if gone."""
    now = stat(pid)
    return now.start if now is not None else None


def hostname() -> str:
    """This machine's name (what hostname() says, without importing socket:
    list and completion are hot paths)."""
    return os.uname().nodename


def identity(action: str | None = None, pid: int | None = None) -> dict[str, Any]:
    """Who is doing ``action``: pid, its start time and the host (see alive())."""
    pid = os.getpid() if pid is None else pid
    ident: dict[str, Any] = {"pid": pid, "start": start_time(pid), "host": hostname()}
    if action:
        ident["action"] = action
    return ident


def alive(ident: dict[str, Any] | None) -> bool | None:
    """True/False when we can tell; None (unknown) for another host or no pid."""
    if not ident or not ident.get("pid"):
        return None
    if ident.get("host") not in (None, hostname()):
        return None
    pid = int(ident["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    recorded = ident.get("start")
    if recorded is None:
        return True
    now = stat(pid)
    if now is None:
        return os.path.exists(f"/proc/{pid}") or None
    if now.start != recorded:
        return False
    return not now.zombie  # a zombie has exited; only its parent has not reaped it yet


# --- every process /proc shows, and ending the proven ones -------------------------------


class Stat:
    """One process as /proc/<pid>/stat shows it (a plain class: list imports no dataclasses)."""

    __slots__ = ("pid", "ppid", "pgid", "sid", "start", "zombie")

    def __init__(self, pid: int, ppid: int, pgid: int, sid: int, start: int,
                 zombie: bool) -> None:
        self.pid, self.ppid, self.pgid, self.sid = pid, ppid, pgid, sid
        self.start, self.zombie = start, zombie


def stat(pid: int) -> Stat | None:
    """The process ``pid`` now, or None when there is none (or /proc cannot say)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after its closing ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    try:
        return Stat(pid, int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]),
                    fields[0] == b"Z")
    except (IndexError, ValueError):
        return None


def scan() -> list[Stat]:
    """Every live process /proc shows (zombies left out: they have ended)."""
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if name.isdigit():
            s = stat(int(name))
            if s is not None and not s.zombie:
                found.append(s)
    return found


def same(pid: int, start: int | None) -> bool:
    """Whether ``pid`` still is the live process that started at ``start``."""
    s = stat(pid)
    return s is not None and not s.zombie and (start is None or s.start == start)


def environ(pid: int) -> dict[bytes, bytes] | None:
    """The environment ``pid`` was started with; None when it cannot be read (gone, or
    another user's)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def cmdline(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


def cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def end(targets: list[Stat], grace: float) -> list[Stat]:
    """SIGTERM ``targets``, SIGKILL those still there after ``grace`` seconds; returns the
    ones that are gone now. Each is signalled only while it is still the same process (its
    start time): a pid reused meanwhile is left alone."""
    import signal
    import time

    def still(t: Stat) -> bool:
        return same(t.pid, t.start)

    def send(sig: int, among: list[Stat]) -> None:
        # Oldest first, so parents before their children: a shell signalled after its
        # child could start another one before it ends.
        for t in sorted(among, key=lambda t: (t.start, t.pid)):
            if still(t):
                try:
                    os.kill(t.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass

    def wait(among: list[Stat], seconds: float) -> list[Stat]:
        deadline = time.monotonic() + seconds
        left = [t for t in among if still(t)]
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [t for t in left if still(t)]
        return left

    send(signal.SIGTERM, targets)
    left = wait(targets, grace)
    if left:
        send(signal.SIGKILL, left)
        left = wait(left, 5.0)
    return [t for t in targets if t not in left]
