"""An undo log: each step of a transaction pushes how to take itself back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from git_worker.errors import WorkerError


@dataclass
class UndoLog:
    steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def push(self, name: str, undo: Callable[[], object]) -> None:
        self.steps.append((name, undo))

    notes: list[str] = field(default_factory=list)  # what undoing did worth saying

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


@contextmanager
def transaction() -> Iterator[UndoLog]:
    """An UndoLog rolled back if the block raises (Ctrl-C included), then re-raised.

    A rollback that could not undo everything says so in the error, with the way out.
    """
    undo = UndoLog()
    try:
        yield undo
    except BaseException as failure:
        problems = undo.rollback()
        if undo.notes and isinstance(failure, WorkerError):
            failure.message += "\nrolled back: " + "; ".join(undo.notes)
        if problems and isinstance(failure, WorkerError):
            failure.message += ("\nrollback was incomplete: " + "; ".join(problems)
                                + "\n(run git worker fsck --repair)")
        raise
