"""The score -> J calibration: its fits, its storage in a checkpoint, and `savos calibrate` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from savos.calibration import CALIBRATION_KEY, JCalibration, calibration_of
from savos.checkpoint import read_checkpoint, write_with_meta
from savos.cli import main
from savos.data.synthetic import make_video
from savos.eval.calibrate import Pairs, cross_validate
from savos.quality import BALANCED, FAST, Quality, preset_name
from tests.conftest import write_dataset


def _pairs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.5, 1.0, 2000)
    return scores, np.clip(2 * scores - 1 + rng.normal(0, 0.05, scores.size), 0, 1)


def test_a_linear_map_recovers_the_line_and_keeps_the_order_of_mean_scores() -> None:
    scores, j = _pairs()
    calibration = JCalibration.fit(scores, j, method="linear")
    np.testing.assert_allclose(calibration.estimate([0.6, 0.8, 0.95]), [0.2, 0.6, 0.9], atol=0.02)
    assert calibration.estimate([0.0, 0.3])[0] == 0.0 == calibration.estimate([0.3])[0]  # clipped at 0
    # Mean of the frame estimates = the line at the mean score: objects rank as their mean scores do.
    a, b = np.array([0.7, 0.9, 0.99]), np.array([0.85, 0.86, 0.87])
    assert calibration.estimate(a).mean() == pytest.approx(float(calibration.estimate([a.mean()])[0]), abs=1e-6)
    assert (calibration.estimate(a).mean() > calibration.estimate(b).mean()) == (a.mean() > b.mean())


def test_an_isotonic_map_is_monotone_and_within_0_and_1() -> None:
    scores, j = _pairs(1)
    calibration = JCalibration.fit(scores, j, method="isotonic")
    grid = calibration.estimate(np.linspace(-1, 2, 301))
    assert np.all(np.diff(grid) >= 0)
    assert grid.min() >= 0
    assert grid.max() <= 1
    assert calibration.estimate([0.9])[0] == pytest.approx(0.8, abs=0.03)


def test_a_score_that_says_nothing_is_refused() -> None:
    rng = np.random.default_rng(2)
    scores = rng.uniform(0, 1, 500)
    with pytest.raises(ValueError, match="J does not rise with the score"):
        JCalibration.fit(scores, 1 - scores, method="linear")


def test_a_calibration_is_kept_per_preset_in_the_metadata() -> None:
    calibration = JCalibration((0.5, 1.0), (0.1, 0.9), "test")
    meta = {CALIBRATION_KEY: {"fast": calibration.to_dict()}}
    assert calibration_of(meta, "fast") == calibration
    assert calibration_of(meta, "best") is None
    assert calibration_of({}, "fast") is None
    assert preset_name(FAST) == "fast"
    assert preset_name(BALANCED) == "balanced"
    assert preset_name(Quality(scales=(0.75, 1.0))) is None  # options changed: no preset, no calibration


def test_cross_validation_scores_each_sequence_with_a_map_fitted_without_it() -> None:
    rng = np.random.default_rng(3)
    pairs = Pairs()
    for v in range(6):
        quality = 0.3 + 0.1 * v  # a video's frames share its quality: its score and its J rise together
        for obj in (1, 2):
            for _ in range(30):
                score = 0.45 + 0.5 * quality + rng.normal(0, 0.01)
                pairs.video.append(f"v{v}")
                pairs.obj.append(obj)
                pairs.score.append(score)
                pairs.j.append(float(np.clip(quality + rng.normal(0, 0.02), 0, 1)))
    checked = cross_validate(pairs, "linear")
    assert checked["objects"]["count"] == 12
    assert checked["videos"]["count"] == 6
    assert checked["videos"]["spearman_estimate_one_map"] == pytest.approx(1.0)
    assert checked["objects"]["mean_abs_error_estimate"] < 0.05 < checked["objects"]["mean_abs_error_score"]


def test_write_with_meta_keeps_every_tensor_as_stored(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "calibrated.pt"
    write_with_meta(checkpoint, out, {"note": "x"})
    before, after = read_checkpoint(checkpoint), read_checkpoint(out)
    assert after["meta"] == {**before["meta"], "note": "x"}
    for key, tensor in before["state_dict"].items():
        assert after["state_dict"][key].dtype == tensor.dtype
        assert torch.equal(after["state_dict"][key], tensor)


def test_savos_calibrate_fits_on_sequences_with_ground_truth_and_stores_the_map(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos = {f"s{i}": make_video(5, num_objects=2, seed=i) for i in range(3)}
    root = write_dataset(tmp_path / "data", videos)  # masks on every frame
    out, report = tmp_path / "calibrated.pt", tmp_path / "calibration.json"
    args = ["calibrate", "--data", str(root), "--sequences", "s0,s1,s2", "--checkpoint", str(checkpoint)]
    assert main([*args, "--method", "isotonic", "--out", str(out), "--json", str(report)]) == 0
    assert "Spearman with J" in capsys.readouterr().out
    written = json.loads(report.read_text())
    # Every object of every protocol frame (the first and last excluded): 3 sequences x 2 objects x 3 frames.
    assert len(written["pairs"]["score"]) == 18
    assert sorted(set(written["pairs"]["video"])) == ["s0", "s1", "s2"]
    meta = read_checkpoint(out)["meta"]
    assert meta["checkpoint_id"] == "tiny"
    stored = calibration_of(meta, "fast")
    assert stored is not None
    assert stored.fitted_on.startswith("18 object-frames of 3 sequences")

    # Refitted from the saved pairs, without predicting again; a map for another preset is added beside.
    refit = tmp_path / "refit.pt"
    assert main(["calibrate", "--pairs", str(report), "--checkpoint", str(out), "--quality", "best", "--method",
                 "isotonic", "--out", str(refit)]) == 0  # fmt: skip
    both = read_checkpoint(refit)["meta"][CALIBRATION_KEY]
    assert sorted(both) == ["best", "fast"]
