"""Actions that need the session, the worker and dialogs together: opening models and projects.

Why a separate object: the menu and the model panel trigger the same actions, and neither the main window
(layout only) nor a view (reads/writes the session) should own them. Errors of every job reach the user
through one path here: `JobRunner.jobFailed` -> `Dialogs.error` with core's message.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject

from app.dialogs import MODEL_FILTER, PROJECT_FILTER, Dialogs
from app.folders import save_folder
from app.jobs import ModelLoad, load_model_job
from app.project import PROJECT_SUFFIX, ClassImageSpec, ProjectError
from app.state import Session
from app.worker import JobRunner
from core.resources import default_model_path

log = logging.getLogger(__name__)

ROLES = ("original", "pruned")


def default_model_problem() -> str | None:
    """None when the bundled default model exists, else a message saying what to do instead."""
    p = default_model_path()
    if p.is_file():
        return None
    return (f"The bundled default model is missing ({p}).\n\nOpen an OS2D checkpoint instead (File → Open model…): "
            "an official os2d_v2-train.pth or a model trained with `os2d-studio train`.")


class AppController(QObject):
    def __init__(self, session: Session, runner: JobRunner, dialogs: Dialogs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.dialogs = dialogs
        runner.jobFailed.connect(self._show_job_error)

    def _show_job_error(self, name: str, message: str, details: str) -> None:
        self.dialogs.error(f"{name} failed", message, details)

    # -- models -----------------------------------------------------------------------------------------
    def open_model(self, path: str | os.PathLike, role: str = "original",
                   then: Callable[[], None] | None = None) -> bool:
        """Load a checkpoint in the worker and put it into the session; False if another job runs."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        setter = self.session.set_model if role == "original" else self.session.set_pruned

        def done(info: ModelLoad) -> None:
            setter(info)
            if then is not None:
                then()

        name = "Loading model" if role == "original" else "Loading pruned model"
        worker = self.runner.start(name, load_model_job, str(path), on_result=done,
                                   on_error=(lambda _msg: then()) if then else None)
        if worker is None:
            self.dialogs.warning("Busy", f"Wait for '{self.runner.current_name}' to finish, or cancel it.")
        return worker is not None

    def choose_model(self, role: str = "original") -> bool:
        recent = self.session.recent_models.paths()
        folder = str(Path(recent[0]).parent) if recent else str(default_model_path().parent)
        title = "Open model" if role == "original" else "Open pruned model"
        path = self.dialogs.open_file(title, MODEL_FILTER, folder)
        return self.open_model(path, role) if path else False

    def open_default_model(self) -> bool:
        problem = default_model_problem()
        if problem:
            self.dialogs.error("No default model", problem)
            return False
        return self.open_model(default_model_path())

    def open_startup(self, then: Callable[[], None] | None = None) -> bool:
        """The first start: the default model, its shipped pruned companion beside it, and the sample shelf
        with its classes in the Detection tab; what that sets up is the session's clean baseline. `then`
        runs last (the main window's first detection)."""
        from core.resources import companion_model_path

        if default_model_problem() is not None:
            return False
        companion = companion_model_path()

        def samples() -> None:
            self.load_sample_detection()
            self.session.mark_clean()
            if then is not None:
                then()

        def pruned() -> None:
            if companion.is_file() and self.session.model is not None:
                self.open_model(companion, "pruned", then=samples)
            else:
                samples()

        return self.open_model(default_model_path(), then=pruned)

    def load_sample_detection(self) -> None:
        """The sample shelf and its classes as the Detection tab's inputs (when none are chosen), shown at
        the score threshold the sample manifest gives the default model."""
        from core.resources import sample_manifest, samples_dir

        s = self.session
        m = sample_manifest()
        if m is None:  # samples not installed: start empty
            return
        try:
            if s.target_image is None:
                s.set_target(str(samples_dir() / m["shelf_image"]))
            if not s.class_images:
                s.add_class_images([ClassImageSpec(Path(c).stem, str((samples_dir() / c).resolve()))
                                    for c in m["class_images"]])
        except (OSError, ValueError, KeyError) as e:  # samples not installed or damaged: start empty
            log.warning("sample detection inputs: %s", e)
            return
        model = s.model
        if model is not None and model.path and Path(model.path).resolve() == default_model_path().resolve() \
                and isinstance(m.get("min_score"), (int, float)):
            s.set_detection_settings(score_threshold=float(m["min_score"]))

    def unload_pruned(self) -> None:
        self.session.set_pruned(None)

    # -- projects ---------------------------------------------------------------------------------------
    def open_project(self, path: str | os.PathLike | None = None) -> bool:
        if self.runner.busy:
            self.dialogs.warning("Busy", f"Wait for '{self.runner.current_name}' to finish, or cancel it.")
            return False
        if not self.confirm_discard():
            return False
        if path is None:
            path = self.dialogs.open_file("Open project", PROJECT_FILTER)
            if not path:
                return False
        try:
            project = self.session.open_project(path)
        except ProjectError as e:
            self.dialogs.error("Cannot open project", str(e))
            return False
        if self.session.project_problems:
            self.dialogs.warning("Project opened with problems", "\n".join(self.session.project_problems))

        def load_pruned() -> None:
            if project.pruned_model_path:
                self.open_model(project.pruned_model_path, "pruned")

        if project.model_path:
            self.open_model(project.model_path, "original", then=load_pruned)
        else:
            load_pruned()
        return True

    def save_project(self, save_as: bool = False) -> bool:
        path = self.session.project_path
        if save_as or not path:
            suggested = path or str(save_folder("projects") / f"untitled{PROJECT_SUFFIX}")
            path = self.dialogs.save_file("Save project", PROJECT_FILTER, suggested)
            if not path:
                return False
            if not path.endswith(".json"):
                path += PROJECT_SUFFIX
        try:
            self.session.save_project(path)
        except OSError as e:
            self.dialogs.error("Cannot save project", f"{path}: {e}")
            return False
        if self.session.pruned is not None and not self.session.pruned.path:
            self.dialogs.warning("Pruned model not saved",
                                 "The project records the plan and the importance, but the pruned model exists only "
                                 "in memory: save it (Pruning tab → Save pruned model…) and save the project again "
                                 "to reopen it with the project, or press Prune after reopening.")
        return True

    def confirm_discard(self) -> bool:
        """Before closing or replacing the session: True when it is fine to go on."""
        if not self.session.dirty:
            return True
        answer = self.dialogs.ask_save_changes()
        if answer == "save":
            return self.save_project()
        return answer == "discard"
