"""A banner above the Detection and Video panes while the pruned model has not been repaired after its cut.

Why: a freshly pruned model scores on another scale and misses objects until fine-tuning repairs it;
shown beside its original without a word it looks broken for a reason the app knows. The banner says
so, with the mAP drop when both sides have been evaluated on the same data.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

from app.state import Session


def needs_finetuning(meta: dict) -> bool:
    """A model cut by pruning that neither fine-tuning (distillation from a teacher) nor a refit of the layers
    after the cut (`prune --reconstruct`, which keeps most of the mAP) has repaired since."""
    refit = bool((meta.get("reconstruction") or {}).get("updated"))
    return bool(meta.get("pruning")) and not (meta.get("training") and meta.get("teacher")) and not refit


class PrunedBanner(QLabel):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setWordWrap(True)
        self.setStyleSheet("QLabel { background: #fff3cd; color: #664d03; border: 1px solid #ffe69c;"
                           " border-radius: 4px; padding: 6px; }")
        session.prunedModelChanged.connect(self.refresh)
        session.metricsChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        s = self.session
        show = s.pruned is not None and needs_finetuning(s.pruned.meta)
        if show:
            drop = self._map_drop()
            self.setText("<b>Fine-tune before comparing:</b> this pruned model has not been fine-tuned, so it misses "
                         f"objects and scores on another scale{drop}. Pruning tab → Fine-tune repairs it "
                         "(distillation from the original).")
        self.setVisible(show)

    def _map_drop(self) -> str:
        """', mAP dropped 0.93 → 0.34' from the latest evaluations of both sides on the same images."""
        latest: dict[str, object] = {}
        for e in self.session.evaluations:
            latest[e.role] = e
        o, p = latest.get("original"), latest.get("pruned")
        if o is None or p is None or (o.dataset, o.split, o.images) != (p.dataset, p.split, p.images):
            return ""
        return f" (mAP@0.5 dropped {o.map:.2f} → {p.map:.2f} on {p.images} {p.split} images)"
