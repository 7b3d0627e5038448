"""The main window: layout and wiring only (docks, tabs, menus, status bar).

Views own their widgets, the session owns the state, the controllers own the actions (models and
projects; the pruning workbench's jobs) and the runner owns the job; this file only puts them together.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QTabWidget

from app import __version__
from app.controller import AppController
from app.dialogs import Dialogs
from app.recent import RecentFiles
from app.state import Session
from app.views.detection_view import DetectionView
from app.views.importance_view import ImportanceView
from app.views.job_status import JobStatusWidget
from app.views.metrics_view import MetricsView
from app.views.model_panel import ModelPanel
from app.views.placeholder import PlaceholderView
from app.views.pruning_view import PruningView
from app.views.video_view import VideoView
from app.worker import JobRunner
from app.workbench import WorkbenchController

COMING: dict[str, str] = {}  # tab title -> what arrives there (PlaceholderView), for tabs still to come


class MainWindow(QMainWindow):
    def __init__(self, session: Session | None = None, dialogs: Dialogs | None = None) -> None:
        super().__init__()
        self.session = session or Session(parent=self)
        self.dialogs = dialogs or Dialogs(self)
        if self.dialogs.parent is None:
            self.dialogs.parent = self
        self.runner = JobRunner(self)
        self.controller = AppController(self.session, self.runner, self.dialogs, self)
        self.workbench = WorkbenchController(self.session, self.runner, self.dialogs, self)

        self.model_panel = ModelPanel(self.session, self.controller)
        dock = QDockWidget("Model", self)
        dock.setObjectName("model-dock")
        dock.setWidget(self.model_panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.resizeDocks([dock], [340], Qt.Orientation.Horizontal)  # leaves two image columns at 1280 px

        self.detection_view = DetectionView(self.session, self.controller)
        self.importance_view = ImportanceView(self.session, self.workbench)
        self.pruning_view = PruningView(self.session, self.workbench)
        self.video_view = VideoView(self.session, self.controller)
        self.metrics_view = MetricsView(self.session, self.workbench)
        views = {"Importance": self.importance_view, "Pruning": self.pruning_view, "Detection": self.detection_view,
                 "Video": self.video_view, "Metrics": self.metrics_view}
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for title in ("Importance", "Pruning", "Detection", "Video", "Metrics"):
            self.tabs.addTab(views.get(title) or PlaceholderView(title, COMING[title]), title)
        self.tabs.setCurrentWidget(self.detection_view)
        self.setCentralWidget(self.tabs)

        self.job_status = JobStatusWidget(self.runner)
        self.statusBar().addPermanentWidget(self.job_status)
        self.job_status.statusMessage.connect(self.statusBar().showMessage)

        self._build_menus()
        self.session.dirtyChanged.connect(self.setWindowModified)
        self.session.projectPathChanged.connect(lambda _p: self._update_title())
        self._update_title()
        self.resize(1280, 800)

    def _build_menus(self) -> None:
        c = self.controller
        file_menu = self.menuBar().addMenu("&File")

        def action(text: str, slot, shortcut=None) -> QAction:
            a = file_menu.addAction(text)
            a.triggered.connect(lambda _=False: slot())
            if shortcut is not None:
                a.setShortcut(shortcut)
            return a

        action("Open model…", lambda: c.choose_model("original"), QKeySequence.StandardKey.Open)
        action("Open default model", c.open_default_model)
        action("Open pruned model…", lambda: c.choose_model("pruned"))
        self.recent_menu = QMenu("Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        action("New sample benchmark…", lambda: self.workbench.new_benchmark())
        file_menu.addSeparator()
        action("Open project…", lambda: c.open_project(), QKeySequence("Ctrl+Shift+O"))
        action("Save project…", lambda: c.save_project(), QKeySequence.StandardKey.Save)
        action("Save project as…", lambda: c.save_project(save_as=True), QKeySequence.StandardKey.SaveAs)
        file_menu.addSeparator()
        action("Quit", self.close, QKeySequence.StandardKey.Quit)

    def _fill_recent(self) -> None:
        menu = self.recent_menu
        menu.clear()
        menu.setToolTipsVisible(True)  # the full path, and why a file is greyed
        for title, paths, open_fn in (
            ("Models", self.session.recent_models.paths(), self.controller.open_model),
            ("Projects", self.session.recent_projects.paths(), self.controller.open_project),
        ):
            menu.addSection(title)
            for p in paths:
                if RecentFiles.missing(p):  # kept, greyed: it may come back (a drive attached again)
                    a = menu.addAction(f"{Path(p).name} (missing)")
                    a.setToolTip(f"{p}\nnot found: moved, renamed, deleted, or on a drive that is not attached")
                    a.setEnabled(False)
                    continue
                a = menu.addAction(Path(p).name)
                a.setToolTip(p)
                a.triggered.connect(lambda _=False, p=p, f=open_fn: f(p))
            if not paths:
                menu.addAction("(none)").setEnabled(False)

    def _update_title(self) -> None:
        name = Path(self.session.project_path).name if self.session.project_path else "untitled"
        self.setWindowTitle(f"{name}[*] — os2d-studio {__version__}")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if not self.controller.confirm_discard():
            event.ignore()
            return
        self.runner.shutdown()
        event.accept()
