"""Folder evaluation and ``savos eval``: layouts, missing frames, worker processes, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from savos.cli import main
from savos.data import InputError, write_palette_png
from savos.eval.folders import evaluate_folders


def _write(folder: Path, masks: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, ids in enumerate(masks):
        write_palette_png(folder / f"{t:05d}.png", ids)


def _square(x: int, size: int = 8) -> np.ndarray:
    ids = np.zeros((16, 24), np.uint8)
    ids[4:12, x : x + size] = 1
    return ids


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    gt, pred = tmp_path / "davis", tmp_path / "pred"
    for name in ("alpha", "beta"):
        _write(gt / "Annotations" / "480p" / name, [_square(x) for x in (2, 4, 6, 8)])
    _write(pred / "alpha", [_square(x) for x in (2, 4, 6, 8)])  # perfect
    _write(pred / "beta", [_square(x) for x in (2, 4, 10)])  # frame 3 missing; frame 2 off by 4 px
    return gt, pred


def test_davis_root_missing_frames_are_empty_and_reported(roots: tuple[Path, Path]) -> None:
    gt, pred = roots
    alpha, beta = evaluate_folders(gt, pred, processes=1)
    assert alpha.summary()["J-Mean"] == 1.0
    assert alpha.missing_frames == []
    assert beta.missing_frames == ["00003"]
    # beta scores frames 1 and 2: frame 1 exact (J 1); frame 2 squares at x 6 and 10, 8 wide: 4/12 overlap.
    np.testing.assert_allclose(beta.j[0], [1.0, 4 / 12])


def test_plain_folder_of_sequences_and_processes_agree(roots: tuple[Path, Path]) -> None:
    gt, pred = roots
    inline = evaluate_folders(gt / "Annotations" / "480p", pred, processes=1)
    pooled = evaluate_folders(gt, pred, processes=2)
    for a, b in zip(inline, pooled, strict=True):
        np.testing.assert_array_equal(a.j, b.j)
        np.testing.assert_array_equal(a.f, b.f)


def test_whole_missing_sequence_counts_as_empty(roots: tuple[Path, Path], tmp_path: Path) -> None:
    gt, _ = roots
    empty = tmp_path / "empty"
    empty.mkdir()
    alpha, _ = evaluate_folders(gt, empty, processes=1)
    assert alpha.missing_frames == ["00000", "00001", "00002", "00003"]
    assert alpha.summary()["J-Mean"] == 0.0


def test_unknown_sequence_is_an_input_error(roots: tuple[Path, Path]) -> None:
    gt, pred = roots
    with pytest.raises(InputError, match="no ground truth for sequence 'gamma'"):
        evaluate_folders(gt, pred, ["gamma"])


def test_cli_prints_table_and_writes_json(
    roots: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt, pred = roots
    out = tmp_path / "report.json"
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", str(out), "--processes", "1"]) == 0
    printed = capsys.readouterr().out
    assert "alpha" in printed
    assert "beta" in printed
    assert "all (objects pooled)" in printed
    report = json.loads(out.read_text())
    assert report["sequences"]["beta"]["missing_frames"] == ["00003"]
    assert report["summary"]["J-Mean"] == pytest.approx((1.0 + (1.0 + 4 / 12) / 2) / 2)
    assert report["num_objects"] == 2


def test_cli_names_a_missing_ground_truth_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--gt", str(tmp_path / "nope"), "--pred", str(tmp_path)]) == 2
    assert "nope: ground-truth folder not found" in capsys.readouterr().err
