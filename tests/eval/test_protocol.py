"""The semi-supervised protocol on label maps small enough to score by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from savos.eval.protocol import evaluate_sequence, summarise


def _frames(*grids: list[list[int]]) -> list[np.ndarray]:
    return [np.array(g, dtype=np.uint8) for g in grids]


def test_first_and_last_frames_are_not_scored() -> None:
    gt = _frames([[1, 0]], [[1, 0]], [[1, 0]], [[1, 0]])
    # Wrong on frames 0 and 3 only: they are excluded, so the scores are perfect.
    pred = _frames([[0, 1]], [[1, 0]], [[1, 0]], [[0, 1]])
    result = evaluate_sequence("s", gt, pred)
    assert result.j.shape == (1, 2)
    assert result.summary()["J-Mean"] == 1.0


def test_objects_are_the_ids_of_the_first_frame_and_missing_ones_are_empty() -> None:
    # Ids 1..3 from the first frame (max is 3; 255 is void, never an object). Object 2 is absent from the
    # first frame but still counted (the toolkit takes 1..max). Prediction: object 1 right, 2 and 3 missing.
    first = [[1, 3, 255, 0]]
    gt = _frames(first, [[1, 2, 3, 0]], first)
    pred = _frames(first, [[1, 0, 0, 0]], first)
    result = evaluate_sequence("s", gt, pred)
    assert result.obj_ids == [1, 2, 3]
    np.testing.assert_allclose(result.j[:, 0], [1.0, 0.0, 0.0])
    # F: object 1 perfect; 2 and 3 have an empty prediction and a non-empty GT boundary: P=1, R=0, F=0.
    np.testing.assert_allclose(result.f[:, 0], [1.0, 0.0, 0.0])


def test_region_similarity_by_hand_with_void() -> None:
    gt = _frames([[1, 1, 0, 0]], [[1, 1, 255, 0]], [[0, 0, 0, 0]])
    # Frame 1: prediction covers GT (2 px) plus the void pixel plus one background pixel.
    # Void is ignored: intersection 2, union 3 -> J = 2/3.
    pred = _frames([[1, 1, 0, 0]], [[1, 1, 1, 1]], [[0, 0, 0, 0]])
    result = evaluate_sequence("s", gt, pred)
    assert result.j[0, 0] == pytest.approx(2 / 3)


def test_statistics_pool_objects_across_sequences() -> None:
    # Sequence a: one object, J = 1 on the single scored frame. Sequence b: two objects, J = 0 and 1.
    # Pooled over objects: (1 + 0 + 1) / 3, not the mean of sequence means ((1 + 0.5) / 2).
    a = evaluate_sequence("a", _frames([[1, 0]], [[1, 0]], [[1, 0]]), _frames([[1, 0]], [[1, 0]], [[1, 0]]))
    gt_b = _frames([[1, 2]], [[1, 2]], [[1, 2]])
    b = evaluate_sequence("b", gt_b, _frames([[1, 2]], [[1, 0]], [[1, 2]]))
    summary = summarise([a, b])
    assert summary["J-Mean"] == pytest.approx(2 / 3)
    assert summary["J-Recall"] == pytest.approx(2 / 3)
    assert summary["J&F-Mean"] == pytest.approx((summary["J-Mean"] + summary["F-Mean"]) / 2)


def test_decay_per_object() -> None:
    # 10 frames, 8 scored. Bin edges over 8 frames: round(linspace(1, 8, 5)) - 1 = 0, 2, 4, 5, 7.
    n = 10
    gt = [np.array([[1, 1, 0, 0]], np.uint8)] * n
    good, bad = np.array([[1, 1, 0, 0]], np.uint8), np.array([[0, 0, 1, 1]], np.uint8)
    pred = [good] * 5 + [bad] * 5  # scored frames 1..8: J = 1,1,1,1,0,0,0,0
    result = evaluate_sequence("s", gt, pred)
    # First bin: scored frames 0..2 (J 1, 1, 1); last bin: 5..7 (J 0, 0, 0).
    assert result.object_stats()[0]["J-Decay"] == pytest.approx(1.0)


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="3 ground-truth frames but 2 predictions"):
        evaluate_sequence("s", _frames([[1]], [[1]], [[1]]), _frames([[1]], [[1]]))


def test_two_frame_sequence_scores_nothing() -> None:
    result = evaluate_sequence("s", _frames([[1]], [[1]]), _frames([[1]], [[1]]))
    assert math.isnan(result.summary()["J-Mean"])
