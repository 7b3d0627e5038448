"""The Video tab's request rules without Qt or a model: a newer request waits for ours to stop, an export
is never cancelled by a click, another job refuses, and a stale screen asks for the right frame."""

from __future__ import annotations

from app.transport import PlaybackRequest, Transport, Verdict, play_start, seek_index


def test_requests_are_typed():
    assert PlaybackRequest.play(5) == PlaybackRequest("play", 5, None, "")
    assert PlaybackRequest.frame(7) == PlaybackRequest("frame", 7, 1, "")
    assert PlaybackRequest.export("/x/out.mp4", 0) == PlaybackRequest("export", 0, 0, "/x/out.mp4")


def test_a_new_request_waits_for_ours_to_stop():
    t = Transport()
    play = PlaybackRequest.play(0)
    assert t.submit(play, worker_busy=False) is Verdict.START and not t.playing
    t.started(play)
    assert t.playing and t.running == play

    seek = PlaybackRequest.play(80)  # a seek while playing
    assert t.submit(seek, worker_busy=True) is Verdict.QUEUED and t.pending == seek
    assert t.stop() and t.stopping and not t.stop()  # cancelled once
    assert t.playing  # about to play again from the seek
    assert t.finished() == seek and t.running is None and t.pending is None and not t.stopping

    t.started(PlaybackRequest.frame(3))
    t.submit(PlaybackRequest.frame(4), worker_busy=True)
    t.pending = None  # Pause drops what waited
    assert t.stop() and not t.playing
    assert t.finished() is None


def test_an_export_is_never_cancelled_by_a_click_and_another_job_refuses():
    t = Transport()
    export = PlaybackRequest.export("out.mp4", 4)
    t.started(export)
    assert t.exporting and not t.playing
    assert t.submit(PlaybackRequest.play(0), worker_busy=True) is Verdict.EXPORTING and t.pending is None
    t.finished()
    assert t.submit(PlaybackRequest.frame(0), worker_busy=True) is Verdict.BUSY  # someone else's job


def test_a_stale_screen_asks_for_the_frame_it_shows():
    t = Transport()
    t.stale = True
    assert t.refresh(position=-1, frame_count=192, camera=False) == PlaybackRequest.frame(0)  # the first frame
    assert t.refresh(position=10, frame_count=192, camera=False) == PlaybackRequest.frame(10)  # the same again
    assert t.refresh(position=-1, frame_count=None, camera=True) is None and not t.stale  # never a camera unasked
    t.started(PlaybackRequest.play(0))
    t.stale = True
    assert t.refresh(position=10, frame_count=192, camera=False) == PlaybackRequest.play(11)  # plays on
    assert t.refresh(position=191, frame_count=192, camera=False) is None and t.stale  # at the end: nothing
    t.started(PlaybackRequest.frame(1))
    assert not t.stale  # a started job is the fresh frame


def test_play_and_seek_positions():
    assert play_start(-1, 192) == 0 and play_start(10, 192) == 11
    assert play_start(191, 192) == 0  # at the end: from the start
    assert play_start(500, None) == 501  # a camera has no end
    assert seek_index(500, 192) == 191 and seek_index(-3, 192) == 0 and seek_index(500, None) == 500
