"""The "Model" dock: open a checkpoint (official or ours), the default model or a recent one, and see its
architecture summary and layer table (original and, when loaded, pruned side by side).

Loading runs in the worker through the controller; this view only shows what the session holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMenu, QPushButton,
                               QSizePolicy, QTableView, QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout,
                               QWidget)

from app.controller import AppController, default_model_problem
from app.jobs import ModelLoad
from app.state import Session
from core.model.summary import LayerRow

SUMMARY_ROWS = ("File", "Kind", "Architecture", "Parameters", "Trunk / head", "fp32 size", "Feature dim",
                "Eval scale", "File size", "SHA-256")


def summary_values(info: ModelLoad) -> dict[str, str]:
    """The text of each summary row (same facts as `os2d-studio info`)."""
    s, loaded = info.summary, info.loaded
    eval_scale = loaded.eval_scale
    return {
        "File": Path(loaded.path).name if loaded.path else "(in memory)",
        "Kind": loaded.kind,
        "Architecture": s.description,
        "Parameters": f"{s.parameters:,}",
        "Trunk / head": f"{s.trunk_parameters:,} / {s.head_parameters:,}",
        "fp32 size": f"{s.fp32_mb:.2f} MB ({s.fp32_mib:.2f} MiB)",
        "Feature dim": f"{s.feature_dim} channels, stride {loaded.model.stride}",
        "Eval scale": f"{eval_scale:g}" if eval_scale else "1280 (default)",
        "File size": f"{info.file_bytes / 1e6:.2f} MB" if info.file_bytes else "",
        "SHA-256": loaded.sha256[:16] + "…" if loaded.sha256 else "",
    }


# the module paths' common heads, shortened so the part that differs (layer3.2.conv1) is what shows;
# the full name stays in the tooltip and is what sorting and filtering read
SHORT_NAMES = (("net_feature_maps.", ""), ("net_label_features.net_class_features.", "class trunk "),
               ("os2d_head_creator.aligner.parameter_regressor.", "transform "))


def short_layer_name(name: str) -> str:
    for head, short in SHORT_NAMES:
        if name.startswith(head):
            return short + name[len(head):]
    return name


class LayerTableModel(QStandardItemModel):
    """Convolution and batch-norm rows of `core.model.summary.summarize`; sorts numerically.

    A QStandardItemModel keeps the cells on the C++ side: painting the table needs no Python (no GIL),
    so it stays smooth while a job runs torch in the worker.
    """

    HEADERS = ("Layer", "Kind", "In", "Out", "Kernel", "Params")
    SORT_ROLE = Qt.ItemDataRole.UserRole

    def __init__(self, parent: Any = None) -> None:
        super().__init__(0, len(self.HEADERS), parent)
        self.setHorizontalHeaderLabels(list(self.HEADERS))
        self.rows: tuple[LayerRow, ...] = ()

    def set_rows(self, rows: tuple[LayerRow, ...]) -> None:
        self.rows = tuple(rows)
        self.removeRows(0, self.rowCount())
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r in self.rows:
            cells = []
            for col, raw in enumerate((r.name, r.kind, r.in_channels, r.out_channels, r.kernel, r.params)):
                item = QStandardItem(f"{raw:,}" if col == 5 else short_layer_name(raw) if col == 0 else str(raw))
                item.setData(raw, self.SORT_ROLE)
                item.setEditable(False)
                if col >= 2:
                    item.setTextAlignment(right)
                if col == 0:
                    item.setToolTip(r.name)
                cells.append(item)
            self.appendRow(cells)


class ModelPanel(QWidget):
    def __init__(self, session: Session, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.controller = controller

        self.open_button = QPushButton("Open model…")
        self.open_button.setToolTip("An official OS2D checkpoint (.pth) or an os2d-studio model (.pt)")
        self.default_button = QPushButton("Default model")
        self.recent_button = QToolButton()
        self.recent_button.setText("Recent")
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self.recent_button)
        self.recent_button.setMenu(self.recent_menu)
        self.pruned_button = QPushButton("Open pruned…")
        self.pruned_button.setToolTip("A pruned model to compare with the original "
                                      "(Detection tab: original / pruned / both)")
        buttons = QHBoxLayout()
        for b in (self.open_button, self.default_button, self.recent_button, self.pruned_button):
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.empty_label = QLabel()
        self.empty_label.setWordWrap(True)
        self.empty_label.setTextFormat(Qt.TextFormat.RichText)

        self.summary = QTableWidget(len(SUMMARY_ROWS), 2)
        self.summary.setHorizontalHeaderLabels(["original", "pruned"])
        self.summary.setVerticalHeaderLabels(list(SUMMARY_ROWS))
        self.summary.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.summary.setWordWrap(True)
        self.summary.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.summary.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.summary.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        self.layers_of = QComboBox()
        self.layers_of.addItems(["original", "pruned"])
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter layers (e.g. layer3 or conv)")
        self.filter_edit.setClearButtonEnabled(True)
        self.layer_model = LayerTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.layer_model)
        self.proxy.setSortRole(LayerTableModel.SORT_ROLE)
        self.proxy.setFilterKeyColumn(0)
        self.proxy.setFilterRole(LayerTableModel.SORT_ROLE)  # the full module path, not the shortened text
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.layer_table = QTableView()
        self.layer_table.setModel(self.proxy)
        self.layer_table.setSortingEnabled(True)
        self.layer_table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # module order until the user sorts
        self.layer_table.verticalHeader().setVisible(False)
        self.layer_table.verticalHeader().setDefaultSectionSize(20)
        self.layer_table.setAlternatingRowColors(True)
        self.layer_table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.layer_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.layer_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)  # names whole; scrolls if need be
        header.setStretchLastSection(True)
        for c in range(1, 6):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.layer_count = QLabel()
        layer_bar = QHBoxLayout()
        layer_bar.addWidget(QLabel("Layers of"))
        layer_bar.addWidget(self.layers_of)
        layer_bar.addWidget(self.filter_edit, 1)

        self.layers_box = QWidget()  # hidden until a model is loaded
        lb = QVBoxLayout(self.layers_box)
        lb.setContentsMargins(0, 0, 0, 0)
        lb.addLayout(layer_bar)
        lb.addWidget(self.layer_table, 1)
        lb.addWidget(self.layer_count)

        lay = QVBoxLayout(self)
        lay.addLayout(buttons)
        lay.addWidget(self.empty_label)
        lay.addWidget(self.summary)
        lay.addWidget(self.layers_box, 100)
        lay.addStretch(1)  # keeps the empty state at the top

        self.open_button.clicked.connect(lambda: controller.choose_model("original"))
        self.default_button.clicked.connect(controller.open_default_model)
        self.pruned_button.clicked.connect(lambda: controller.choose_model("pruned"))
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.layers_of.currentIndexChanged.connect(self._show_layers)
        self.filter_edit.textChanged.connect(self._filter)
        session.modelChanged.connect(self.refresh)
        session.prunedModelChanged.connect(self.refresh)
        controller.runner.busyChanged.connect(self._set_busy)
        self.refresh()

    # -- session -> widgets -----------------------------------------------------------------------------
    def refresh(self) -> None:
        s = self.session
        has_model = s.model_info is not None
        problem = default_model_problem()
        self.default_button.setEnabled(problem is None and not self.controller.runner.busy)
        self.default_button.setToolTip(problem or "Open the bundled default model")
        if not has_model:
            hint = ("<b>No model loaded.</b> Open an OS2D checkpoint (an official <code>os2d_v2-train.pth</code> "
                    "or an os2d-studio <code>.pt</code>)")
            hint += ", or a recent one." if problem else ", or the bundled default model."
            if problem:
                hint += "<br><i>The bundled default model is not installed yet.</i>"
            self.empty_label.setText(hint)
        self.empty_label.setVisible(not has_model)
        self.summary.setVisible(has_model or s.pruned_info is not None)
        self.layers_box.setVisible(has_model or s.pruned_info is not None)
        for col, info in enumerate((s.model_info, s.pruned_info)):
            values = summary_values(info) if info else {}
            for row, key in enumerate(SUMMARY_ROWS):
                item = QTableWidgetItem(values.get(key, ""))
                if key == "File" and info is not None:
                    item.setToolTip(info.loaded.path)
                if key == "SHA-256" and info is not None:
                    item.setToolTip(info.loaded.sha256)
                self.summary.setItem(row, col, item)
        self.summary.setColumnHidden(1, s.pruned_info is None)
        self.summary.resizeRowsToContents()
        self.summary.setFixedHeight(self.summary.verticalHeader().length()
                                    + self.summary.horizontalHeader().height() + 4)
        pruned_item = self.layers_of.model().item(1)
        pruned_item.setEnabled(s.pruned_info is not None)
        if s.pruned_info is None and self.layers_of.currentIndex() == 1:
            self.layers_of.setCurrentIndex(0)
        self._show_layers()

    def _show_layers(self) -> None:
        info = self.session.pruned_info if self.layers_of.currentIndex() == 1 else self.session.model_info
        self.layer_model.set_rows(info.summary.layers if info else ())
        self._update_count()

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)
        self._update_count()

    def _update_count(self) -> None:
        n, total = self.proxy.rowCount(), self.layer_model.rowCount()
        self.layer_count.setText(f"{n} of {total} layers" if n != total else f"{total} layers")

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = self.session.recent_models.paths()
        for p in paths:
            action = self.recent_menu.addAction(Path(p).name)
            action.setToolTip(p)
            action.triggered.connect(lambda _=False, p=p: self.controller.open_model(p))
        if not paths:
            self.recent_menu.addAction("(no recent models)").setEnabled(False)

    def _set_busy(self, busy: bool) -> None:
        for b in (self.open_button, self.recent_button, self.pruned_button):
            b.setEnabled(not busy)
        self.default_button.setEnabled(not busy and default_model_problem() is None)
