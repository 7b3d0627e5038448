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


class StepMissing(ValueError):
    """An action asked for before the step it needs ("open a model first"): no file is at fault, so the
    message is the whole line."""


# Errors a user's input or environment causes: a bad file or argument (InputError), a missing step
# (StepMissing), or the operating
# system refusing a file (missing, no permission, disk full). The CLI prints them as one line and the
# GUI shows them without a traceback; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (InputError, StepMissing, OSError)


def user_message(exc: BaseException) -> str:
    """The one line a user sees: core's message for an InputError; "<file>: <reason>" for an OSError
    about a file (not Python's "[Errno 13] Permission denied: '<file>'")."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        target = f"{exc.filename} → {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
        return f"{target}: {exc.strerror}"
    return str(exc) or type(exc).__name__
