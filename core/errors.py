"""The one shape of user-facing input errors: "<file or source>: <problem>".

Every kind of bad input (model file, image, dataset, video, importance file) subclasses this, so the
CLI and the GUI show any of them as one line without knowing which module raised it.
"""

from __future__ import annotations

import os


class InputError(ValueError):
    def __init__(self, source: str | os.PathLike, problem: str) -> None:
        self.source = str(source)
        self.path = self.source
        self.problem = problem
        super().__init__(f"{source}: {problem}")
