"""The run report: totals, failures with reasons, per-video counts, lowest mean score first, HTML with sheets."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from savos.io import encode_frame, masks_key, to_table
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
    (tmp_path / "previews").mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "previews" / "doubtful.png")

    report = load_report(str(tmp_path))
    assert [(v.video_id, v.frames, v.objects) for v in report.videos] == [("doubtful", 6, 2), ("good", 4, 2)]
    assert [round(v.mean_score, 3) for v in report.videos] == [0.4, 0.9]
    text = format_report(report)
    assert "videos labelled: 2 (10 frames); failed: 1" in text
    assert "broken: InputError: x.jpg: cannot decode image" in text
    assert text.index("doubtful") < text.index("good")
    page = write_html(report)
    assert page.count("data:image/png;base64,") == 1  # the one video with a preview
    assert "x.jpg: cannot decode image" in page


def test_an_empty_output_reports_nothing(tmp_path: Path) -> None:
    report = load_report(str(tmp_path))
    assert (report.videos, report.failures, report.runs) == ([], [], [])
    assert "videos labelled: 0" in format_report(report)
