"""Recent files: newest first, persisted, a missing file kept. The Recent menus: a missing file stays listed,
greyed with "(missing)"; a damaged one stays listed and opening it shows the loader's message in the error dialog."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from app.recent import RecentFiles


def _entries(menu) -> dict[str, object]:
    return {a.text(): a for a in menu.actions() if not a.isSeparator() and a.text()}


def test_missing_and_damaged_models_stay_in_recent(window, wait_idle, message_boxes, tiny_model_path, tmp_path):
    gone = tmp_path / "gone.pt"
    gone.write_bytes(tiny_model_path.read_bytes())
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"this is not a checkpoint\n" * 10)
    recent = window.session.recent_models
    for p in (gone, damaged, tiny_model_path):
        recent.add(p)
    gone.unlink()
    listed = [str(tiny_model_path.resolve()), str(damaged.resolve()), str(gone.resolve())]
    assert recent.paths() == listed

    window._fill_recent()
    assert window.recent_menu.toolTipsVisible()
    entries = _entries(window.recent_menu)
    missing = entries["gone.pt (missing)"]
    assert not missing.isEnabled() and str(gone.resolve()) in missing.toolTip() and "not found" in missing.toolTip()
    assert entries["damaged.pt"].isEnabled() and entries["tiny18.pt"].isEnabled()

    entries["damaged.pt"].trigger()  # opening a damaged file reports it
    wait_idle(window)
    assert [(b["icon"], b["text"], b["details"]) for b in message_boxes] == [
        (QMessageBox.Icon.Critical, f"{damaged.resolve()}: not a PyTorch checkpoint (it looks like a text file)", "")]
    assert window.session.model is None and recent.paths() == listed

    panel = window.model_panel  # the model panel's Recent lists it too; opening it says it is gone
    panel._fill_recent()
    _entries(panel.recent_menu)["gone.pt"].trigger()
    wait_idle(window)
    assert message_boxes[-1]["text"] == f"{gone.resolve()}: file not found" and message_boxes[-1]["details"] == ""
    assert recent.paths() == listed

    gone.write_bytes(tiny_model_path.read_bytes())  # back again (a drive attached): usable at once
    window._fill_recent()
    entries = _entries(window.recent_menu)
    assert "gone.pt (missing)" not in entries and entries["gone.pt"].isEnabled()
    entries["gone.pt"].trigger()
    wait_idle(window)
    assert window.session.model is not None and recent.paths()[0] == str(gone.resolve())


def test_recent_files_newest_first_missing_ones_kept(tmp_path):
    settings = QSettings(str(tmp_path / "r.ini"), QSettings.Format.IniFormat)
    recent = RecentFiles(settings, "recent/models", limit=3)
    files = []
    for i in range(5):
        f = tmp_path / f"m{i}.pt"
        f.touch()
        files.append(f)
        recent.add(f)
    recent.add(files[3])
    assert recent.paths() == [str(files[3]), str(files[4]), str(files[2])]
    files[4].unlink()  # stays listed (the menus mark it), never dropped without a word
    assert recent.paths() == [str(files[3]), str(files[4]), str(files[2])]
    assert RecentFiles.missing(str(files[4])) and not RecentFiles.missing(str(files[3]))
    again = RecentFiles(QSettings(str(tmp_path / "r.ini"), QSettings.Format.IniFormat), "recent/models")
    assert again.paths() == recent.paths()  # persisted
