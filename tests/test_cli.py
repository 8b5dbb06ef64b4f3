from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from savos.cli import main
from savos.data import read_mask, write_palette_png
from savos.data.synthetic import make_video
from savos.model import SAVOS
from tests.conftest import shared_data, write_mp4


@pytest.fixture
def clip(tmp_path):
    """A 5-frame folder of JPEGs named frame_a..frame_e, and its exact masks."""
    video = make_video(num_frames=5, num_objects=2, seed=3)
    folder = tmp_path / "clip"
    folder.mkdir()
    for name, frame in zip("abcde", video.frames, strict=True):
        Image.fromarray(frame).save(folder / f"frame_{name}.jpg")
    return folder, video


def segment(source, *options) -> int:
    """Run ``savos segment SOURCE OPTIONS...`` in-process; returns the exit status."""
    return main(["segment", str(source), *map(str, options)])


def read_ids(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "P"
        return np.array(image)


def test_segment_writes_one_palette_png_per_frame_named_after_it(clip, checkpoint, tmp_path) -> None:
    folder, video = clip
    write_palette_png(tmp_path / "first.png", video.masks[0])
    out = tmp_path / "out"
    assert (
        segment(folder, "--mask", tmp_path / "first.png", "--out", out, "--checkpoint", checkpoint, "--device", "cpu")
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{n}.png" for n in "abcde"]
    np.testing.assert_array_equal(read_ids(out / "frame_a.png"), video.masks[0])
    assert set(np.unique(read_ids(out / "frame_e.png"))) <= {0, 1, 2}


def test_segment_a_video_file_names_frames_by_index(checkpoint, tmp_path) -> None:
    video = make_video(num_frames=4, num_objects=1, seed=4)
    path = tmp_path / "clip.mp4"
    write_mp4(path, video.frames)
    masks = tmp_path / "masks"
    masks.mkdir()
    write_palette_png(masks / "00000.png", video.masks[0])
    out = tmp_path / "out"
    assert segment(path, "--masks-dir", masks, "--out", out, "--checkpoint", checkpoint) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(4)]


def test_without_a_shipped_checkpoint_the_default_model_says_it_is_untrained(
    clip, tmp_path, caplog, monkeypatch
) -> None:
    monkeypatch.setattr("savos.checkpoint.DEFAULT_CHECKPOINT", tmp_path / "absent.pt")
    folder, video = clip
    write_palette_png(tmp_path / "first.png", video.masks[0])
    with caplog.at_level(logging.WARNING):
        assert segment(folder, "--mask", tmp_path / "first.png", "--out", tmp_path / "o") == 0
    assert "UNTRAINED" in caplog.text


def test_bad_input_exits_2_and_names_the_file(clip, checkpoint, tmp_path, capsys) -> None:
    folder, _ = clip
    Image.fromarray(np.full((64, 96, 3), 7, np.uint8)).save(tmp_path / "rgb.png")
    code = segment(folder, "--mask", tmp_path / "rgb.png", "--out", tmp_path / "o", "--checkpoint", checkpoint)
    assert code == 2
    assert f"{tmp_path / 'rgb.png'}: mask is a colour image" in capsys.readouterr().err


def test_a_mask_named_after_no_frame_is_refused(clip, checkpoint, tmp_path, capsys) -> None:
    folder, video = clip
    masks = tmp_path / "masks"
    masks.mkdir()
    write_palette_png(masks / "frame_z.png", video.masks[0])
    assert segment(folder, "--masks-dir", masks, "--out", tmp_path / "o", "--checkpoint", checkpoint) == 2
    assert "frame_z.png: mask is named after no frame" in capsys.readouterr().err


def test_judo_sparse_annotations(checkpoint, tmp_path) -> None:
    """On the real judo sample: 16 masks; no id before its first annotated frame;
    on each annotated frame the annotated object is exactly where its annotation puts it. These hold for any
    weights, so a small random model checks them quickly."""
    frames = shared_data("samples/cutie-examples/images/judo")
    masks = shared_data("samples/cutie-examples/masks/judo")
    out = tmp_path / "judo"
    assert segment(frames, "--masks-dir", masks, "--out", out, "--checkpoint", checkpoint, "--device", "cpu") == 0
    written = sorted(out.glob("*.png"))
    assert len(written) == 16
    annotations = {int(p.stem): read_mask(p, (480, 854)) for p in sorted(masks.glob("*.png"))}
    first_frame = {int(ids.max()): frame_idx for frame_idx, ids in annotations.items()}
    assert first_frame == {1: 0, 2: 5, 3: 8, 4: 13}
    for path in written:
        frame_idx, ids = int(path.stem), read_ids(path)
        assert all(first_frame[obj_id] <= frame_idx for obj_id in np.unique(ids) if obj_id)
        if frame_idx in annotations:
            obj_id = int(annotations[frame_idx].max())
            np.testing.assert_array_equal(ids == obj_id, annotations[frame_idx] == obj_id)


def test_console_script_points_at_the_cli() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "savos"]
    assert script.value == "savos.cli:main"


def test_info_says_under_which_terms_the_weights_may_be_used(checkpoint, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--backbone", "efficientnet_lite0"]) == 0
    shown = capsys.readouterr().out
    assert "checkpoint default (default.pt)" in shown
    assert "licence           CC BY-NC 4.0" in shown
    assert "DAVIS-2016" in shown
    assert main(["info", "--checkpoint", str(checkpoint)]) == 0
    assert "licence           not recorded" in capsys.readouterr().out


def test_segmenting_reports_each_frame_to_the_callers_progress(tmp_path, tiny_model: SAVOS) -> None:
    from savos.data import FrameFolder
    from savos.inference import Predictor
    from savos.segment import segment_to_pngs

    video = make_video(num_frames=4, num_objects=2, seed=8)
    (frames := tmp_path / "frames").mkdir()
    for t, frame in enumerate(video.frames):
        Image.fromarray(frame).save(frames / f"{t:05d}.jpg")
    done: list[int] = []
    written = segment_to_pngs(
        Predictor(tiny_model, device="cpu"),
        FrameFolder(frames),
        {0: video.masks[0]},
        tmp_path / "out",
        on_frame=lambda: done.append(len(list((tmp_path / "out").iterdir()))),
    )
    assert written == 4
    assert done == [1, 2, 3, 4]  # called once each frame's mask is on disk
