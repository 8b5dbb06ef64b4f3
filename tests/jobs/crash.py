"""A Ray worker setup hook for fault tests: the first actor to reach a chosen video dies mid-video.

Installed with ``runtime_env={"worker_process_setup_hook": "tests.jobs.crash.install"}``; the product has no
test hooks of its own. ``SAVOS_CRASH_VIDEO`` names the video, ``SAVOS_CRASH_MARKER`` a file whose creation makes
the crash happen once only (the restarted actor then labels the video normally).
"""

from __future__ import annotations

import os


def install() -> None:
    from savos_job import writer

    video_id, marker = os.environ.get("SAVOS_CRASH_VIDEO"), os.environ.get("SAVOS_CRASH_MARKER")
    if not video_id or not marker:
        return
    original = writer.MaskWriter._finish

    def crash_then_finish(self, video, error):  # type: ignore[no-untyped-def]
        if video.task.video_id == video_id:  # the whole video computed and encoded, nothing uploaded yet
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                return original(self, video, error)
            os.close(fd)
            os._exit(1)  # the actor process dies like an OOM kill would: no exception, no cleanup
        return original(self, video, error)

    writer.MaskWriter._finish = crash_then_finish  # type: ignore[method-assign]
