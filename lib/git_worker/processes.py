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
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after its closing ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19])  # field 22, starttime, in clock ticks since boot


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
    current = start_time(pid)
    if current is None:
        return os.path.exists(f"/proc/{pid}") or None
    if current != recorded:
        return False
    # A zombie has exited; only its parent has not reaped it yet.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"
    except OSError:
        return False
