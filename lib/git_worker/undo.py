"""An undo log: each step of a transaction pushes how to take itself back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class UndoLog:
    steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def push(self, name: str, undo: Callable[[], object]) -> None:
        self.steps.append((name, undo))

    def rollback(self) -> list[str]:
        """Undo in reverse; collect (don't raise) failures so every step gets its turn."""
        problems = []
        for name, undo in reversed(self.steps):
            try:
                undo()
            except Exception as e:
                problems.append(f"undo {name}: {e}")
        self.steps.clear()
        return problems
