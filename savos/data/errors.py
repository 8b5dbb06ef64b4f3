"""Errors about input files. Every message starts with the file it is about."""

from __future__ import annotations

import os


class InputError(ValueError):
    """A frame, video or mask that cannot be used as given."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str]]:
        # Rebuilt from (path, problem) when it crosses a process boundary (evaluation workers).
        return (InputError, (self.path, self.problem))
