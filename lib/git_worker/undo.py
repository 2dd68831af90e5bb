"""An undo log: each step of a transaction pushes how to take itself back."""

from __future__ import annotations

from git_worker.errors import WorkerError, from_os_error

# threading for annotations only: rm and spawn of one id never import it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable


class UndoLog:
    # A plain class, not a dataclass: see spawn.Task.
    def __init__(self, interrupted: threading.Event | None = None) -> None:
        self.steps: list[tuple[str, Callable[[], object]]] = []
        # Set when the process is interrupted while this transaction runs in a thread
        # (only the main thread receives ^C): the transaction stops after the step in
        # progress.
        self.interrupted = interrupted
        self.notes: list[str] = []  # what undoing did worth saying

    def push(self, name: str, undo: Callable[[], object]) -> None:
        """Record how to take back the step just done — then, if the process has been
        interrupted meanwhile, stop here (KeyboardInterrupt: the transaction rolls back,
        this step included)."""
        self.steps.append((name, undo))
        self.stop_if_interrupted()

    def stop_if_interrupted(self) -> None:
        """Raise KeyboardInterrupt if the process has been interrupted (see interrupted):
        push() asks after every step; a transaction asks before its commit point too."""
        if self.interrupted is not None and self.interrupted.is_set():
            raise KeyboardInterrupt


    def rollback(self) -> list[str]:
        """Undo in reverse; collect (don't raise) failures so every step gets its turn.
        An undo that returns a list of strings (e.g. the processes it ended) adds them to
        ``notes``."""
        problems = []
        for name, undo in reversed(self.steps):
            try:
                said = undo()
            except Exception as e:
                problems.append(f"undo {name}: {e}")
                continue
            if isinstance(said, list):
                self.notes.extend(str(s) for s in said)
        self.steps.clear()
        return problems


def transaction(interrupted: threading.Event | None = None) -> Transaction:
    """An UndoLog rolled back if the block raises (Ctrl-C included), then re-raised.
    ``interrupted``: see UndoLog.

    A rollback that could not undo everything says so in the error, with the way out. A
    permission or disk error becomes the WorkerError that says which file and what to do.
    """
    return Transaction(UndoLog(interrupted=interrupted))


class Transaction:
    """transaction()'s with block. A class, not contextlib.contextmanager: see locks.Flock."""

    def __init__(self, undo: UndoLog) -> None:
        self.undo = undo

    def __enter__(self) -> UndoLog:
        return self.undo

    def __exit__(self, kind: type[BaseException] | None, failure: BaseException | None,
                 traceback: object) -> None:
        if failure is None:
            return
        problems = self.undo.rollback()
        error = from_os_error(failure) if isinstance(failure, OSError) else None
        if error is None:
            if not isinstance(failure, WorkerError):
                return  # re-raised as it is
            error = failure
        if self.undo.notes:
            error.message += "\nrolled back: " + "; ".join(self.undo.notes)
        if problems:
            error.message += ("\nrollback was incomplete: " + "; ".join(problems)
                              + "\n(run git worker fsck --repair)")
        if error is failure:
            return  # re-raised, with what the rollback said
        raise error from failure
