"""``make demo`` end to end: the generated corpus, the shipped checkpoint, a local Ray, Parquet and previews."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from savos.io import read_video_masks
from savos_job.demo import CORPUS, run_demo

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # ~45 s on 2 CPU cores; the only test of what `make demo` runs


def test_demo_labels_every_video_and_draws_previews(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ray = pytest.importorskip("ray")
    try:
        ious = run_demo(tmp_path, num_actors=2)
    finally:
        ray.shutdown()
    names = [name for name, _, _ in CORPUS]
    assert sorted(ious) == sorted(names)
    for name, num_objects, _ in CORPUS:
        video = read_video_masks(str(tmp_path / "labels"), name)
        assert video.obj_ids == list(range(1, num_objects + 1))
        assert video.model.startswith("savos-lite0-davis16")
        with Image.open(tmp_path / "labels" / "previews" / f"{name}.png") as sheet:
            assert sheet.width == 4 * 320  # 16 frames, all on the sheet, 4 to a row
    # The shipped checkpoint follows these shapes well enough to be worth showing (v1: 0.62 to 0.90 per video).
    assert min(ious.values()) > 0.5
    printed = capsys.readouterr().out
    assert f"{tmp_path / 'labels' / 'masks'}" in printed
    assert f"{tmp_path / 'labels' / 'previews'}" in printed
