"""The "Metrics" tab: original vs pruned (parameters, MACs, size, CPU latency, mAP@0.5), every evaluation
so far, and three plots -- size vs mAP with its Pareto front, the sensitivity curves (mAP vs ratio per
group) and the fine-tuning loss, which grows live while a fine-tune runs.

Everything shown is in the session (`evaluations`, `sensitivity`, `finetune_log`), written by the jobs
of the Pruning tab; this view only draws it. A second page, "Study: mAP vs size", is
`app.views.study_plot.StudyPanel`: the bundled seed study with the session's models placed on it.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg

from app.views.plots import make_plot
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSplitter,
                               QTabWidget, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.jobs import ModelLoad, model_key
from app.project import RUNTIME_LABELS
from app.pruning_jobs import Evaluation, model_label
from app.state import Session
from app.views.ratio_panel import GROUP_TITLES, fmt_change
from app.views.study_plot import StudyPanel

SUMMARY_ROWS = ("Parameters", "MACs", "Size (fp32)", "CPU latency", "mAP@0.5")
SUMMARY_COLUMNS = ("Original", "Pruned", "Pruned vs original")
RUNTIME_COLUMNS = ("Original", "Pruned", "Pruned speed-up")
HISTORY_COLUMNS = ("When", "Role", "Model", "How it was made", "Parameters", "Size (MB)", "GMACs", "Latency (ms)",
                   "mAP@0.5", "Images", "Dataset")
ROLE_COLORS = {"original": (40, 90, 200), "pruned": (230, 120, 20)}
GROUP_COLORS = {"stem": (120, 120, 120), "layer1": (31, 119, 180), "layer2": (44, 160, 44), "layer3": (214, 39, 40),
                "transform": (148, 103, 189)}
GROUP_SYMBOLS = {"stem": "s", "layer1": "o", "layer2": "t", "layer3": "d", "transform": "star"}


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both smaller size (x) and higher mAP (y), by increasing size."""
    front: list[tuple[float, float]] = []
    best = -np.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def map_range(plot: pg.PlotWidget, maps: list[float]) -> None:
    """mAP axes start at 0 and end a little above the best value (a flat 0 curve stays readable)."""
    top = max([0.0] + [m for m in maps if np.isfinite(m)])
    # a little room above the best point, so its marker is not cut by the frame (mAP 1.0 included)
    plot.setYRange(0.0, max(0.05, min(1.0, top * 1.15), top * 1.04), padding=0.02)


def _legend(plot: pg.PlotWidget, offset: tuple[int, int] = (-8, 8)) -> None:
    plot.addLegend(offset=offset, brush=pg.mkBrush(255, 255, 255, 215), pen=pg.mkPen(200, 200, 200),
                   labelTextColor="#333", labelTextSize="8pt", verSpacing=-4)


def _plot(title: str, x: str, y: str) -> pg.PlotWidget:
    return make_plot(title, x, y, title_size="10pt", min_height=220)


def _item(text: str, right: bool = False) -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    if right:
        it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return it


class MetricsView(QWidget):
    def __init__(self, session: Session, workbench=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.workbench = workbench  # app.workbench.WorkbenchController: starts the runtime timing job

        self.summary = QTableWidget(len(SUMMARY_ROWS), len(SUMMARY_COLUMNS))
        self.summary.setHorizontalHeaderLabels(list(SUMMARY_COLUMNS))
        self.summary.setVerticalHeaderLabels(list(SUMMARY_ROWS))
        self.summary.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.summary.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.summary.setFixedHeight(self.summary.verticalHeader().length() + self.summary.horizontalHeader().height() + 6)
        self.summary.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.summary_note = QLabel()
        self.summary_note.setWordWrap(True)
        self.summary_note.setStyleSheet("color: palette(mid);")
        self.history = QTableWidget(0, len(HISTORY_COLUMNS))
        self.history.setHorizontalHeaderLabels(list(HISTORY_COLUMNS))
        self.history.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history.verticalHeader().setVisible(False)
        self.history.verticalHeader().setDefaultSectionSize(20)
        hh = self.history.horizontalHeader()
        for c in range(len(HISTORY_COLUMNS)):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.runtimes = QTableWidget(len(RUNTIME_LABELS), len(RUNTIME_COLUMNS))
        self.runtimes.setHorizontalHeaderLabels(list(RUNTIME_COLUMNS))
        self.runtimes.setVerticalHeaderLabels(list(RUNTIME_LABELS.values()))
        self.runtimes.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.runtimes.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.runtimes.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.runtimes.setFixedHeight(self.runtimes.verticalHeader().length()
                                     + self.runtimes.horizontalHeader().height() + 6)
        self.runtimes.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.runtimes_note = QLabel()
        self.runtimes_note.setWordWrap(True)
        self.runtimes_note.setStyleSheet("color: palette(mid);")
        self.time_button = QPushButton("Time runtimes")
        self.time_button.setToolTip("Time both models on PyTorch, ONNX Runtime and OpenVINO (fp32, bf16 where the "
                                    "CPU has it, int8 once quantized in the Pruning tab); exports on first use")
        self.time_button.clicked.connect(lambda: self.workbench is not None and self.workbench.time_runtimes())
        self.time_button.setEnabled(workbench is not None)
        self.clear_button = QPushButton("Clear metrics")
        self.clear_button.setToolTip("Forget all evaluations, the sensitivity curves and the loss curve")

        self.pareto_plot = _plot("size vs mAP (Pareto front)", "size (MB, fp32)", "mAP@0.5")
        _legend(self.pareto_plot, (-8, -8))  # bottom right: big accurate models sit top right
        self.front = self.pareto_plot.plot(pen=pg.mkPen((90, 90, 90), width=1.5, style=Qt.PenStyle.DashLine),
                                           name="Pareto front")
        self.sens_points = pg.ScatterPlotItem(size=7, symbol="t", pen=None, brush=pg.mkBrush(150, 150, 150, 160),
                                              hoverable=True, name="sensitivity points")
        self.pareto_plot.addItem(self.sens_points)
        self.eval_points = {role: pg.ScatterPlotItem(size=12, pen=pg.mkPen("w"), brush=pg.mkBrush(*color),
                                                     hoverable=True, name=role)
                            for role, color in ROLE_COLORS.items()}
        for item in self.eval_points.values():
            self.pareto_plot.addItem(item)

        self.sens_plot = _plot("sensitivity: one group pruned at a time", "ratio removed", "mAP@0.5")
        _legend(self.sens_plot, (8, -8))  # bottom left: curves start high at ratio 0 and fall
        self.sens_curves: dict[str, pg.PlotDataItem] = {}
        self.baseline = pg.InfiniteLine(angle=0, pen=pg.mkPen((90, 90, 90), style=Qt.PenStyle.DashLine),
                                        label="unpruned {value:.3f}", labelOpts={"color": "#555", "position": 0.85,
                                                                               "anchors": [(1, 1), (1, 1)]})
        self.sens_plot.addItem(self.baseline)
        self.baseline.setVisible(False)

        self.loss_plot = _plot("fine-tuning loss", "iteration", "loss")
        _legend(self.loss_plot)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen((40, 90, 200), width=2), symbol="o", symbolSize=4,
                                              symbolBrush=(40, 90, 200), name="total")
        self.distill_curve = self.loss_plot.plot(pen=pg.mkPen((230, 120, 20), width=1.5), name="distillation")

        tables = QWidget()
        tl = QVBoxLayout(tables)
        tl.setContentsMargins(0, 0, 0, 0)

        def section(title: str, button: QPushButton, table: QTableWidget, note: QLabel) -> None:
            """A titled table with its action button above and its note beside it."""
            head = QHBoxLayout()
            head.addWidget(QLabel(title), 1)
            head.addWidget(button)
            tl.addLayout(head)
            row = QHBoxLayout()
            row.addWidget(table, 2)
            row.addWidget(note, 1)
            tl.addLayout(row)

        section("<b>Original vs pruned</b> (latest evaluation of each; counts at the reference input)",
                self.clear_button, self.summary, self.summary_note)
        section("<b>Latency per runtime</b> (ms per detection forward, class features precomputed, at the reference "
                "input)", self.time_button, self.runtimes, self.runtimes_note)
        tl.addWidget(QLabel("<b>Evaluations</b>"))
        tl.addWidget(self.history, 1)
        plots = QWidget()
        pl = QHBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        for w in (self.pareto_plot, self.sens_plot, self.loss_plot):
            pl.addWidget(w)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(tables)
        splitter.addWidget(plots)
        splitter.setSizes([470, 290])
        self.study = StudyPanel(session, self.current, ROLE_COLORS)
        self.pages = QTabWidget()
        self.pages.addTab(splitter, "This session")
        self.pages.addTab(self.study, "Study: mAP vs size")
        lay = QVBoxLayout(self)
        lay.addWidget(self.pages)

        self.clear_button.clicked.connect(session.clear_metrics)
        session.metricsChanged.connect(self.refresh)
        session.modelChanged.connect(self.refresh)
        session.prunedModelChanged.connect(self.refresh)
        session.finetuneLogged.connect(self._show_loss)
        self.refresh()

    # -- session -> widgets ------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._show_summary()
        self._show_runtimes()
        self._show_history()
        self._show_pareto()
        self._show_sensitivity()
        self._show_loss()
        self.study.show_session()

    def current(self, role: str) -> Evaluation | None:
        """The latest evaluation of the model now in the session under `role` (None when not measured)."""
        info: ModelLoad | None = self.session.model_info if role == "original" else self.session.pruned_info
        if info is None:
            return None
        for e in reversed(self.session.evaluations):
            if e.role == role and e.parameters == info.summary.parameters and e.description == model_label(info.loaded):
                return e
        return None

    def _show_summary(self) -> None:
        cols = []
        for role in ("original", "pruned"):
            info = self.session.model_info if role == "original" else self.session.pruned_info
            e = self.current(role)
            if e is not None:
                cols.append((e.parameters, e.macs, e.size_mb, e.latency_ms, e.map))
            elif info is not None:
                macs = info.cost.base.macs if info.cost is not None else None
                cols.append((info.summary.parameters, macs, info.summary.fp32_mb, None, None))
            else:
                cols.append((None,) * 5)
        fmts = (lambda v: f"{v:,}", lambda v: f"{v / 1e9:.2f} G", lambda v: f"{v:.2f} MB", lambda v: f"{v:.1f} ms",
                lambda v: f"{v:.4f}")
        for r, fmt in enumerate(fmts):
            a, b = cols[0][r], cols[1][r]
            self.summary.setItem(r, 0, _item(fmt(a) if a is not None else "–", True))
            self.summary.setItem(r, 1, _item(fmt(b) if b is not None else "–", True))
            if a is None or b is None:
                change = ""
            elif r == 3:
                change = f"{a / b:.2f}× faster" if b else ""
            elif r == 4:
                change = f"{b - a:+.4f}".replace("-", "−")
            else:
                change = fmt_change(b, a)
            self.summary.setItem(r, 2, _item(change, True))
        notes = []
        for role in ("original", "pruned"):
            info = self.session.model_info if role == "original" else self.session.pruned_info
            if info is not None and self.current(role) is None:
                notes.append(f"The {role} model is not evaluated yet (Pruning tab → Evaluate): latency and mAP missing.")
        ft = self.session.finetune_summary
        if ft:
            fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
            notes.append(f"Last fine-tune: {ft.get('iterations')} iterations, mAP {fmt(ft.get('map_before'))} → "
                         f"{fmt(ft.get('map_after'))} (teacher {fmt(ft.get('teacher_map'))}).")
        self.summary_note.setText("\n\n".join(notes))

    def _show_runtimes(self) -> None:
        """The last runtime timing, for the sides whose model it was measured on."""
        t = self.session.runtime_timings
        cols: dict[str, dict] = {}
        for role in ("original", "pruned"):
            info = self.session.model_info if role == "original" else self.session.pruned_info
            if t is not None and info is not None and t.labels.get(role) == model_key(info.loaded):
                cols[role] = {r.runtime: r for r in t.rows[role]}
        base = cols.get("original", {}).get("torch:fp32")
        skipped = {}
        for r, runtime in enumerate(RUNTIME_LABELS):
            cells = []
            for role in ("original", "pruned"):
                m = cols.get(role, {}).get(runtime)
                if m is not None and m.skipped:
                    skipped[RUNTIME_LABELS[runtime]] = m.skipped
                cells.append(m)
            for c, m in enumerate(cells):
                item = _item(f"{m.ms:.1f} ms" if m is not None and m.ms is not None else "–", True)
                if m is not None and m.skipped:
                    item.setToolTip(m.skipped)
                self.runtimes.setItem(r, c, item)
            p = cells[1]
            speed = (f"{base.ms / p.ms:.2f}×" if base is not None and base.ms and p is not None and p.ms
                     else "")
            self.runtimes.setItem(r, 2, _item(speed, True))
        if not cols:
            note = "Not timed yet for these models: Time runtimes measures each model on every runtime."
        else:
            size = "×".join(str(v) for v in t.input_size)
            note = (f"Input {size}, one class image, median of {t.repeats} runs on the CPU; speed-up: the "
                    "pruned model on each runtime against the original on PyTorch fp32.")
            note += "".join(f"\n{name}: {why}." for name, why in skipped.items())
        self.runtimes_note.setText(note)

    def _show_history(self) -> None:
        evals = self.session.evaluations
        self.history.setRowCount(len(evals))
        for r, e in enumerate(reversed(evals)):  # newest first
            when = time.strftime("%H:%M:%S", time.localtime(e.when)) if e.when else ""
            cells = (when, e.role, e.model, e.description or ("unpruned" if e.role == "original" else ""),
                     f"{e.parameters:,}", f"{e.size_mb:.2f}", f"{e.macs / 1e9:.2f}",
                     f"{e.latency_ms:.1f}" if e.latency_ms is not None else "–", f"{e.map:.4f}", str(e.images),
                     f"{e.dataset} ({e.split})")
            for c, text in enumerate(cells):
                item = _item(text, right=4 <= c <= 9)
                if c in (2, 3):
                    item.setToolTip(text)
                self.history.setItem(r, c, item)

    def _show_pareto(self) -> None:
        pts = []
        for role, item in self.eval_points.items():
            evals = [e for e in self.session.evaluations if e.role == role]
            item.setData([e.size_mb for e in evals], [e.map for e in evals],
                         data=[f"{e.model}: {e.size_mb:.2f} MB, mAP {e.map:.4f}" for e in evals])
            pts += [(e.size_mb, e.map) for e in evals]
        sens = self.session.sensitivity
        sp = [p for p in sens.points if p.group] if sens else []
        self.sens_points.setData([p.size_mb for p in sp], [p.map for p in sp],
                                 data=[f"{p.group} at {p.ratio:.0%}: {p.size_mb:.2f} MB, mAP {p.map:.4f}" for p in sp])
        pts += [(p.size_mb, p.map) for p in sp]
        front = pareto_front(pts)
        self.front.setData([p[0] for p in front], [p[1] for p in front])
        map_range(self.pareto_plot, [y for _, y in pts])

    def _show_sensitivity(self) -> None:
        sens = self.session.sensitivity
        groups = sens.groups if sens else ()
        for g in list(self.sens_curves):
            if g not in groups:
                self.sens_plot.removeItem(self.sens_curves.pop(g))
        for g in groups:
            if g not in self.sens_curves:
                color = GROUP_COLORS.get(g, (0, 0, 0))
                self.sens_curves[g] = self.sens_plot.plot(pen=pg.mkPen(color, width=2), symbol=GROUP_SYMBOLS.get(g, "o"),
                                                          symbolBrush=color, symbolPen=None, symbolSize=8,
                                                          name=GROUP_TITLES.get(g, g))
            xs, ys = sens.curve(g)
            self.sens_curves[g].setData(xs, ys)
        map_range(self.sens_plot, [p.map for p in sens.points] if sens else [])
        if sens and sens.ratios:  # from the unpruned baseline to the last ratio, its markers inside the frame
            self.sens_plot.setXRange(0.0, max(sens.ratios), padding=0.06)
        else:
            self.sens_plot.enableAutoRange(axis="x")
        base = sens.baseline if sens else None
        self.baseline.setVisible(base is not None)
        if base is not None:
            self.baseline.setValue(base.map)
        title = "sensitivity: one group pruned at a time"
        if sens:
            state = "" if sens.complete else " (running or cancelled)"
            title += f"<br><span style='font-size:8pt'>{sens.criterion}, {sens.images} images of {sens.dataset}{state}</span>"
        self.sens_plot.setTitle(title, color="#333", size="10pt")

    def _show_loss(self, *_args) -> None:
        log = [e for e in self.session.finetune_log if "loss" in e]
        its = np.array([e["iteration"] for e in log], dtype=float)
        self.loss_curve.setData(its, np.array([e["loss"] for e in log], dtype=float))
        dist = [e for e in log if "distill_attention" in e]
        self.distill_curve.setData(np.array([e["iteration"] for e in dist], dtype=float),
                                   np.array([e["distill_attention"] for e in dist], dtype=float))
        ft = self.session.finetune_summary
        title = "fine-tuning loss"
        if ft and ft.get("map_after") is not None:
            title += (f"<br><span style='font-size:8pt'>mAP {ft.get('map_before', 0) or 0:.4f} → "
                      f"{ft['map_after']:.4f}</span>")
        elif log:
            title += f"<br><span style='font-size:8pt'>iteration {int(its[-1])}, loss {log[-1]['loss']:.4f}</span>"
        self.loss_plot.setTitle(title, color="#333", size="10pt")

