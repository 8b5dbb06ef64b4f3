"""What a run has left to label: videos with masks are skipped, per-video or compacted."""

from __future__ import annotations

from pathlib import Path

from savos.data.synthetic import make_video
from savos.io import compact, masks_key
from savos_job.config import JobConfig
from savos_job.pending import pending_tasks
from tests.conftest import write_dataset
from tests.io.test_compact import write_output
from tests.jobs.invariants import output_at


def test_videos_compacted_since_are_done_and_new_ones_pending(tmp_path: Path) -> None:
    corpus = write_dataset(tmp_path / "corpus", {name: make_video(2, seed=i) for i, name in enumerate("abcd")})
    out = tmp_path / "out"
    write_output(out, ["a", "b"])
    compact(str(out))
    write_output(out, ["c"])  # labelled after the compaction: still per video
    assert not (out / masks_key("a")).exists()
    config = JobConfig(input=str(corpus), output=str(out))
    assert [t.video_id for t in pending_tasks(config, output_at(str(out)))] == ["d"]
