"""Corrections back from the tools: what a person changed in an export becomes a sparse annotation in the
corrections store; bad exports are refused naming the file, and nothing in the store changes."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from savos.cli import main
from savos.data import read_mask
from savos.io import VideoMasks
from savos.io.exports import export_video
from tests.io.conftest import NAMES

K = 9  # the corrected frame


def _fixed(video: VideoMasks) -> VideoMasks:
    """The judo video with object 1 on frame K moved 12 pixels right, over the background only: a person's fix."""
    ids = video.ids.copy()
    moved = np.roll(ids[K] == 1, 12, axis=1) & np.isin(ids[K], [0, 1])
    ids[K][ids[K] == 1] = 0
    ids[K][moved] = 1
    return dataclasses.replace(video, ids=ids)


def _import(out: Path, fmt: str, file: Path, store: Path, *labels: str) -> int:
    command = ["import-corrections", str(out), "--video-id", "judo", "--format", fmt, "--file", str(file)]
    return main([*command, "--into", str(store), *labels])


@pytest.mark.parametrize("fmt", ["cvat", "cvat-images", "labelstudio"])
def test_a_fix_in_a_tool_export_becomes_a_sparse_annotation(
    judo: tuple[Path, Path], judo_masks: VideoMasks, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed = _fixed(judo_masks)
    export = export_video(fixed, fmt, tmp_path / "export", names=NAMES)
    labels = [arg for obj_id, name in NAMES.items() for arg in ("--label", f"{obj_id}={name}")]
    assert _import(judo[1], fmt, export, tmp_path / "store", *labels) == 0
    assert f"judo: object 1 corrected on frame(s) {K:05d}" in capsys.readouterr().out
    (png,) = sorted((tmp_path / "store" / "judo").iterdir())
    assert png.name == f"{K:05d}.png"
    annotation = read_mask(png)
    np.testing.assert_array_equal(annotation == 1, fixed.ids[K] == 1)
    assert set(np.unique(annotation)) == {0, 1}  # the objects nobody touched are not annotations


def test_a_second_fix_on_the_frame_keeps_the_first(
    judo: tuple[Path, Path], judo_masks: VideoMasks, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    first = _fixed(judo_masks)
    assert _import(judo[1], "cvat", export_video(first, "cvat", tmp_path / "a", names=NAMES), store) == 0
    second = judo_masks.ids.copy()
    referee = judo_masks.ids[K] == 3
    second[K][referee] = 0  # the referee's mask cut to its lower half
    lower = np.arange(second.shape[1])[:, None] >= np.nonzero(referee)[0].mean()
    second[K][referee & lower] = 3
    assert (second[K] == 3).any()
    export = export_video(dataclasses.replace(judo_masks, ids=second), "cvat", tmp_path / "b", names=NAMES)
    assert _import(judo[1], "cvat", export, store) == 0
    annotation = read_mask(store / "judo" / f"{K:05d}.png")
    np.testing.assert_array_equal(annotation == 1, first.ids[K] == 1)
    np.testing.assert_array_equal(annotation == 3, second[K] == 3)


def _bad_exports(video: VideoMasks, tmp_path: Path) -> dict[str, tuple[str, Path, str]]:
    unknown = video.ids.copy()
    unknown[K][:10, :10] = 9
    longer = np.concatenate([video.ids, video.ids[-1:]])
    longer_scores = {obj_id: np.append(scores, scores[-1]) for obj_id, scores in video.scores.items()}
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(video.ids[K][:100]).save(small / f"{K:05d}.png")
    stray = tmp_path / "stray"
    stray.mkdir()
    Image.fromarray(video.ids[K]).save(stray / "frame_99.png")
    return {
        "unknown object": (
            "cvat",
            export_video(
                dataclasses.replace(
                    video, ids=unknown, obj_ids=[1, 2, 3, 4, 9], scores={**video.scores, 9: video.scores[1]}
                ),
                "cvat",
                tmp_path / "u",
            ),
            r"object ids \[9\] are not objects of video 'judo'",
        ),
        "frame outside": (
            "cvat-images",
            export_video(
                dataclasses.replace(video, ids=longer, frame_names=[*video.frame_names, "00016"], scores=longer_scores),
                "cvat-images",
                tmp_path / "l",
            ),
            r"frame 16 is outside video 'judo' \(frames 0..15\)",
        ),
        "wrong size": ("davis", small, r"a mask of 854x100, but video 'judo' is 854x480"),
        "stray frame": ("davis", stray, r"frame_99\.png: named after no frame of video 'judo'"),
    }


@pytest.mark.parametrize("case", ["unknown object", "frame outside", "wrong size", "stray frame"])
def test_a_bad_export_is_refused_naming_it_and_the_store_is_unchanged(
    judo: tuple[Path, Path], judo_masks: VideoMasks, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    assert _import(judo[1], "cvat", export_video(_fixed(judo_masks), "cvat", tmp_path / "ok", names=NAMES), store) == 0
    before = {p: p.read_bytes() for p in store.rglob("*.png")}
    fmt, export, message = _bad_exports(judo_masks, tmp_path)[case]
    assert _import(judo[1], fmt, export, store) == 2
    err = capsys.readouterr().err
    assert export.name in err
    assert re.search(message, err), err
    assert {p: p.read_bytes() for p in store.rglob("*.png")} == before


def test_corrections_for_a_video_not_in_the_output_are_refused(
    judo: tuple[Path, Path], judo_masks: VideoMasks, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = export_video(_fixed(judo_masks), "cvat", tmp_path, names=NAMES)
    command = ["import-corrections", str(judo[1]), "--video-id", "judo-2", "--format", "cvat", "--file", str(export)]
    assert main([*command, "--into", str(tmp_path / "store")]) == 2
    assert "no masks for video 'judo-2'" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_a_mask_deleted_in_the_tool_is_kept_as_an_absence(
    judo: tuple[Path, Path], judo_masks: VideoMasks, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = judo_masks.ids.copy()
    assert (ids[K] == 3).any()
    ids[K][ids[K] == 3] = 0  # the person deleted object 3's mask on frame K
    export = export_video(dataclasses.replace(judo_masks, ids=ids), "cvat", tmp_path / "export", names=NAMES)
    labels = [arg for obj_id, name in NAMES.items() for arg in ("--label", f"{obj_id}={name}")]
    assert _import(judo[1], "cvat", export, tmp_path / "store", *labels) == 0
    assert f"judo: object 3 removed on frame(s) {K:05d}" in capsys.readouterr().out
    assert json.loads((tmp_path / "store" / "judo" / "removed.json").read_text()) == {f"{K:05d}": [3]}
    assert not (tmp_path / "store" / "judo" / f"{K:05d}.png").exists()
