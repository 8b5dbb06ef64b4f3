"""Exports round-trip: a video written as DAVIS PNGs, SA-V JSON or YouTube-VIS JSON reads back to the same masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from savos.data.synthetic import make_video
from savos.io import VideoMasks
from savos.io.exports import FORMATS, export_video, read_export


@pytest.fixture
def video() -> VideoMasks:
    ids = make_video(6, num_objects=3, seed=5).masks.astype(np.uint8)
    ids[ids == 3] = 0
    ids[4:][make_video(6, num_objects=3, seed=5).masks[4:] == 3] = 7  # object 7 first appears in frame 4
    names = [f"{t:05d}" for t in range(6)]
    scores = {i: np.ones(6, np.float32) for i in (1, 2, 7)}
    return VideoMasks("clip-1", names, [1, 2, 7], ids, scores, "m1")


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(video: VideoMasks, tmp_path: Path, fmt: str) -> None:
    written = export_video(video, fmt, tmp_path)
    names, ids = read_export(written, fmt)
    assert names == video.frame_names
    np.testing.assert_array_equal(ids, video.ids)


def test_sav_names_objects_and_first_frames(video: VideoMasks, tmp_path: Path) -> None:
    document = json.loads(export_video(video, "sav", tmp_path).read_text())
    assert document["masklet_id"] == [1, 2, 7]
    assert document["masklet_first_appeared_frame"] == [0, 0, 4]
    assert len(document["masklet"]) == 6 and all(len(frame) == 3 for frame in document["masklet"])  # noqa: PT018


def test_ytvis_has_null_segmentations_where_an_object_is_absent(video: VideoMasks, tmp_path: Path) -> None:
    document = json.loads(export_video(video, "ytvis", tmp_path).read_text())
    (late,) = [a for a in document["annotations"] if a["instance_id"] == 7]
    assert late["segmentations"][:4] == [None] * 4
    assert late["bboxes"][4] is not None and late["areas"][4] == float((video.ids[4] == 7).sum())  # noqa: PT018
    assert document["videos"][0]["file_names"][0] == "clip-1/00000.jpg"


def test_unknown_format_is_refused(video: VideoMasks, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format 'png'"):
        export_video(video, "png", tmp_path)
