"""The run report: totals, failures with reasons, per-video counts, the lowest expected J (or mean score)
first, HTML with sheets."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from savos.io import encode_frame, masks_key, read_video_masks, to_table
from savos.io.report import format_report, load_report, write_html


def _video(out: Path, video_id: str, frames: int, score: float) -> None:
    labels = np.zeros((frames, 10, 10), np.uint8)
    labels[:, 2:6, 2:6] = 1
    labels[: frames // 2, 7:9, 7:9] = 2  # object 2 leaves half way: its empty rows must not lower the score
    probs = np.stack([(labels == 1) * score, (labels == 2) * score], axis=1).astype(np.float32)
    rows = [r for t in range(frames) for r in encode_frame(video_id, t, f"{t:05d}", labels[t], [1, 2], probs[t], "m")]
    buffer = io.BytesIO()
    pq.write_table(to_table(rows), buffer)
    (out / masks_key(video_id)).parent.mkdir(parents=True)
    (out / masks_key(video_id)).write_bytes(buffer.getvalue())


def test_report_lists_failures_and_the_lowest_scores_first(tmp_path: Path) -> None:
    _video(tmp_path, "good", 4, 0.9)
    _video(tmp_path, "doubtful", 6, 0.4)
    (tmp_path / "failures").mkdir()
    record = {"video_id": "broken", "error_type": "InputError", "error": "x.jpg: cannot decode image"}
    (tmp_path / "failures" / "broken.json").write_text(json.dumps(record))
    (tmp_path / "_runs").mkdir()
    run = {"run_id": "r1", "videos_done": 2, "videos_failed": 1, "frames": 10, "frames_per_second": 5.0}
    (tmp_path / "_runs" / "r1.json").write_text(json.dumps(run))
    rerun = {**run, "run_id": "r2", "videos_done": 1, "videos_carried": 1, "carried_from": "labels/v1"}
    (tmp_path / "_runs" / "r2.json").write_text(json.dumps(rerun))
    (tmp_path / "previews").mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "previews" / "doubtful.png")

    report = load_report(str(tmp_path))
    assert [(v.video_id, v.frames, v.objects) for v in report.videos] == [("doubtful", 6, 2), ("good", 4, 2)]
    assert [round(v.mean_score, 3) for v in report.videos] == [0.4, 0.9]
    text = format_report(report)
    assert "videos labelled: 2 (10 frames); failed: 1" in text
    assert "run r1: 2 done, 1 failed, 10 frames" in text
    assert "run r2: 1 done, 1 failed, 1 carried from labels/v1, 10 frames" in text
    assert "broken: InputError: x.jpg: cannot decode image" in text
    assert text.index("doubtful") < text.index("good")
    page = write_html(report)
    assert page.count("data:image/png;base64,") == 1  # the one video with a preview
    assert "x.jpg: cannot decode image" in page


def test_an_empty_output_reports_nothing(tmp_path: Path) -> None:
    report = load_report(str(tmp_path))
    assert (report.videos, report.failures, report.runs) == ([], [], [])
    assert "videos labelled: 0" in format_report(report)


def _estimated(out: Path, video_id: str, score: float, estimate: float) -> None:
    """A one-object video whose rows carry a j_estimate (as written with a calibrated checkpoint)."""
    labels = np.zeros((3, 10, 10), np.uint8)
    labels[:, 2:6, 2:6] = 1
    rows = [
        dataclasses.replace(r, j_estimate=estimate)
        for t in range(3)
        for r in encode_frame(video_id, t, f"{t:05d}", labels[t], [1], (labels[t] == 1)[None] * score, "m")
    ]
    (out / masks_key(video_id)).parent.mkdir(parents=True)
    pq.write_table(to_table(rows), out / masks_key(video_id))


def test_with_expected_j_the_lowest_estimate_comes_first_whatever_the_score(tmp_path: Path) -> None:
    _estimated(tmp_path, "confident-but-wrong", 0.95, 0.30)
    _estimated(tmp_path, "unsure-but-right", 0.60, 0.80)
    report = load_report(str(tmp_path))
    assert [v.video_id for v in report.videos] == ["confident-but-wrong", "unsure-but-right"]
    assert [round(v.j_estimate or 0, 3) for v in report.videos] == [0.3, 0.8]
    text = format_report(report)
    assert "lowest expected J first" in text
    assert "Lowest expected J first" in write_html(report)


def test_files_from_before_the_estimate_column_are_read_and_ranked_by_score(tmp_path: Path) -> None:
    _video(tmp_path, "old", 4, 0.9)
    old = pq.read_table(tmp_path / masks_key("old")).drop_columns(["j_estimate"])
    pq.write_table(old, tmp_path / masks_key("old"))  # as written before the column existed
    _estimated(tmp_path, "new", 0.5, 0.1)
    report = load_report(str(tmp_path))
    assert {v.video_id: v.j_estimate for v in report.videos} == {"old": None, "new": pytest.approx(0.1)}
    assert report.ranked_by == "mean score"  # a mix of estimates and scores would not compare
    assert [v.video_id for v in report.videos] == ["new", "old"]
    assert read_video_masks(str(tmp_path), "old").estimates is None
    np.testing.assert_allclose(read_video_masks(str(tmp_path), "new").estimates[1], 0.1)
