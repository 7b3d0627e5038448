"""Recently used files, kept in the user's settings."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings


class RecentFiles:
    """Most-recently-used paths in QSettings (newest first, at most `limit`).

    A file that went missing or is damaged stays listed: dropping it silently would leave the user
    wondering where it went, and a missing one may come back (a drive attached again). The menus mark
    missing files (`missing`); opening a damaged one reports what is wrong with it."""

    def __init__(self, settings: QSettings, key: str, limit: int = 10) -> None:
        self.settings, self.key, self.limit = settings, key, limit

    def paths(self) -> list[str]:
        value = self.settings.value(self.key, [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [str(p) for p in items if p]

    @staticmethod
    def missing(path: str) -> bool:
        return not os.path.exists(path)

    def add(self, path: str | os.PathLike) -> None:
        p = str(Path(path).resolve())
        items = [p] + [q for q in self.paths() if q != p]
        self.settings.setValue(self.key, items[: self.limit])

    def clear(self) -> None:
        self.settings.remove(self.key)


def default_settings() -> QSettings:
    """INI settings in the user's config folder (tests point QSettings.setPath at a temporary folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "os2d-studio", "os2d-studio")
