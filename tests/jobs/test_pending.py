"""What a run has left to label: videos with masks are skipped, per-video or compacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from savos.data.synthetic import make_video
from savos.io import compact, masks_key
from savos.io.schema import failure_key
from savos_job.config import JobConfig
from savos_job.digests import DigestSet
from savos_job.pending import ListingNotes, pending_tasks
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


@pytest.mark.parametrize("retry_failed", [False, True])
def test_what_earlier_runs_wrote_is_listed_once_and_decides_what_is_pending(tmp_path: Path, retry_failed: bool) -> None:
    corpus = write_dataset(tmp_path / "corpus", {name: make_video(2, seed=i) for i, name in enumerate("abcde")})
    out = tmp_path / "out"
    write_output(out, ["a", "e"])
    (out / masks_key("b")).parent.mkdir(parents=True)
    (out / masks_key("b")).write_bytes(b"PAR1")  # too small to be a whole Parquet file: written again
    (out / failure_key("c")).parent.mkdir(parents=True)
    (out / failure_key("c")).write_text("{}")
    config = JobConfig(input=str(corpus), output=str(out), retry_failed=retry_failed)
    notes = ListingNotes()
    tasks = pending_tasks(config, output_at(str(out)), notes)
    (out / masks_key("e")).unlink()  # gone after the listing started: the listing said it was there
    expected = ["b", "c", "d"] if retry_failed else ["b", "d"]
    assert [t.video_id for t in tasks] == expected
    assert notes.failed_before.count == (0 if retry_failed else 1)


def test_digest_set_finds_every_repeat_before_and_after_its_digests_are_merged(monkeypatch) -> None:
    monkeypatch.setattr(DigestSet, "MIN_MERGE", 64)  # many merges in a small test
    seen = DigestSet()
    ids = [f"video-{i}" for i in range(1000)] + ["caf\u00e9", "x\udcff", "", "0"]  # not UTF-8, empty, "0"
    assert all(seen.add(video_id) for video_id in ids)
    assert len(seen) == len(ids)
    assert all(video_id in seen for video_id in ids)
    assert "video-1000" not in seen
    assert not any(seen.add(video_id) for video_id in reversed(ids))  # merged long ago and still there
    assert seen.add("video-1000")
    assert not seen.add("video-1000")
    assert len(seen) == len(ids) + 1


def test_a_repeated_manifest_id_is_labelled_once_across_many_rows(tmp_path: Path, monkeypatch) -> None:
    from savos_job.simulate import SCHEME, write_manifest

    monkeypatch.setattr(DigestSet, "MIN_MERGE", 64)
    manifest = write_manifest(tmp_path / "m.jsonl", 500, 1, 0.0)
    with manifest.open("a") as f:
        f.write(manifest.read_text().splitlines()[3] + "\n")  # video 3 again, after 500 rows and several merges
    config = JobConfig(input=str(manifest), output=str(tmp_path / "out"), allow_schemes=(SCHEME,))
    notes = ListingNotes()
    ids = [t.video_id for t in pending_tasks(config, output_at(config.output), notes)]
    assert ids == [f"video-{i:07d}" for i in range(500)]
    assert notes.duplicate_ids.count == 1
