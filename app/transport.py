"""The Video tab's requests and their bookkeeping: which one runs in the worker, which waits for it to
stop, and whether the frame on screen is out of date.

Why without Qt: every rule of Play, Step, Seek, Export and the automatic re-runs (a newer request cancels
ours and starts once it has stopped; an export is never cancelled by a click) lives here as plain Python,
tested on its own; `app.playback` only starts and cancels the jobs it decides on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from typing import Literal


@dataclass(frozen=True)
class PlaybackRequest:
    """A job the tab asks for: play from `start` to the end, show the one frame `start`, or export the
    first `frames` frames (0: all) to `path`."""

    kind: Literal["play", "frame", "export"]
    start: int = 0
    frames: int | None = None
    path: str = ""

    @classmethod
    def play(cls, start: int) -> PlaybackRequest:
        return cls("play", int(start))

    @classmethod
    def frame(cls, index: int) -> PlaybackRequest:
        return cls("frame", int(index), 1)

    @classmethod
    def export(cls, path: str | os.PathLike, frames: int) -> PlaybackRequest:
        return cls("export", 0, int(frames), str(path))


class Verdict(Enum):
    """What `Transport.submit` decided."""

    START = "start"  # the worker is free: start the request now
    QUEUED = "queued"  # our job runs: stop it, the request starts when it has stopped
    EXPORTING = "exporting"  # our export runs: refused
    BUSY = "busy"  # someone else's job holds the worker: refused


def play_start(position: int, frame_count: int | None) -> int:
    """Where Play starts: after the frame on screen, from the beginning once at the end."""
    start = position + 1
    return 0 if frame_count is not None and start >= frame_count else start


def seek_index(index: int, frame_count: int | None) -> int:
    """`index` within the video's frames (a source of unknown length takes any index >= 0)."""
    return max(0, min(int(index), (frame_count - 1) if frame_count else int(index)))


class Transport:
    """Our running request, the one waiting for it to stop, and whether the frame on screen is stale."""

    def __init__(self) -> None:
        self.running: PlaybackRequest | None = None
        self.pending: PlaybackRequest | None = None  # starts once the running one has stopped
        self.stopping = False  # cancel requested: frames still coming from the running job are dropped
        self.stale = False  # the frame on screen no longer matches the models or settings

    @property
    def playing(self) -> bool:
        """Playing, or about to play again (a seek while playing restarts the stream)."""
        if self.pending is not None:
            return self.pending.kind == "play"
        return self.running is not None and self.running.kind == "play" and not self.stopping

    @property
    def exporting(self) -> bool:
        return self.running is not None and self.running.kind == "export"

    def submit(self, request: PlaybackRequest, worker_busy: bool) -> Verdict:
        if self.exporting:
            return Verdict.EXPORTING
        if self.running is not None:
            self.pending = request
            return Verdict.QUEUED
        return Verdict.BUSY if worker_busy else Verdict.START

    def stop(self) -> bool:
        """Mark the running request cancelled; True when its job must be cancelled now."""
        if self.running is None or self.stopping:
            return False
        self.stopping = True
        return True

    def started(self, request: PlaybackRequest) -> None:
        self.running, self.stopping, self.stale = request, False, False

    def finished(self) -> PlaybackRequest | None:
        """Our job is over: the request that waited for it, if any."""
        self.running, self.stopping = None, False
        pending, self.pending = self.pending, None
        return pending

    def refresh(self, position: int, frame_count: int | None, camera: bool) -> PlaybackRequest | None:
        """What brings a stale screen up to date: go on playing after the frame on screen, run that frame
        again, or show the first frame (never a camera unasked); None when nothing is to run."""
        if self.playing:
            start = position + 1
            return PlaybackRequest.play(start) if frame_count is None or start < frame_count else None
        if position >= 0:
            return PlaybackRequest.frame(position)
        if not camera:
            return PlaybackRequest.frame(0)
        self.stale = False
        return None
