"""From a labelled output to what people use: the labeler's contact sheet, ``savos export``, ``savos preview``
and ``savos report`` on it."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from savos.cli import main
from savos.data.synthetic import make_video
from savos.inference import Predictor
from savos.io import read_video_masks
from savos.io.exports import read_export
from savos.model import SAVOS
from savos_job.corpus import discover
from savos_job.labeler import VideoLabeler
from savos_job.writer import wants_preview
from tests.conftest import write_dataset
from tests.jobs.invariants import output_at


@pytest.fixture
def labelled(tmp_path: Path, tiny_model: SAVOS) -> tuple[Path, Path]:
    corpus = write_dataset(tmp_path / "corpus", {"a": make_video(5, num_objects=2, seed=1)}, every=1000)
    out = tmp_path / "out"
    labeler = VideoLabeler(Predictor(tiny_model, device="cpu"), "tiny", output_at(str(out)), preview_every=1)
    (task,) = discover(str(corpus))
    assert labeler.run_one(task).status == "done"
    return corpus, out


def test_the_labeler_writes_a_contact_sheet(labelled: tuple[Path, Path]) -> None:
    _, out = labelled
    with Image.open(output_at(str(out)).preview("a")) as sheet:
        assert sheet.size[0] == 4 * 320  # five frames, one tile each, four to a row
        assert sheet.size[1] == 2 * (round(64 * 320 / 96) + 20)


def test_previews_sample_about_one_in_n_by_id() -> None:
    picked = [i for i in range(2000) if wants_preview(f"video-{i}", 10)]
    assert 150 < len(picked) < 250
    assert picked == [i for i in range(2000) if wants_preview(f"video-{i}", 10)]  # the same on a rerun


@pytest.mark.parametrize("fmt", ["davis", "sav", "ytvis"])
def test_export_command(labelled: tuple[Path, Path], tmp_path: Path, fmt: str) -> None:
    _, out = labelled
    assert main(["export", str(out), "--video-id", "a", "--format", fmt, "--dest", str(tmp_path / "x")]) == 0
    written = tmp_path / "x" / ("a" if fmt == "davis" else "a.json")
    names, ids = read_export(written, fmt)
    video = read_video_masks(str(out), "a")
    assert names == video.frame_names
    np.testing.assert_array_equal(ids, video.ids)


@pytest.mark.parametrize("suffix", [".png", ".mp4", ".gif"])
def test_preview_command(labelled: tuple[Path, Path], tmp_path: Path, suffix: str) -> None:
    corpus, out = labelled
    dest = tmp_path / f"preview{suffix}"
    frames = corpus / "JPEGImages" / "480p" / "a"
    assert main(["preview", str(out), "--video-id", "a", "--frames", str(frames), "--dest", str(dest)]) == 0
    if suffix == ".mp4":
        capture = cv2.VideoCapture(str(dest))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
        capture.release()
    else:
        with Image.open(dest) as image:
            assert getattr(image, "n_frames", 1) == (5 if suffix == ".gif" else 1)


def test_preview_refuses_frames_of_another_video(labelled: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    _, out = labelled
    other = write_dataset(tmp_path / "other", {"z": make_video(3, seed=9)})
    frames = other / "JPEGImages" / "480p" / "z"
    assert (
        main(["preview", str(out), "--video-id", "a", "--frames", str(frames), "--dest", str(tmp_path / "p.png")]) == 2
    )
    assert "3 frames of 96x64, but video a has 5 masks" in capsys.readouterr().err


def test_report_command(labelled: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    _, out = labelled
    assert main(["report", str(out), "--html", str(tmp_path / "r.html")]) == 0
    assert "videos labelled: 1 (5 frames); failed: 0" in capsys.readouterr().out
    assert "data:image/png;base64," in (tmp_path / "r.html").read_text()  # the labeler's contact sheet


def test_even_sample_keeps_a_bounded_evenly_spaced_subset() -> None:
    from savos_job.writer import EvenSample

    sample = EvenSample(size=8)
    for t in range(1000):
        sample.offer(t, np.zeros(1))
    kept = sorted(sample.items)
    assert 8 <= len(kept) <= 16
    assert len({b - a for a, b in itertools.pairwise(kept)}) == 1  # one spacing
    assert kept[0] == 0
