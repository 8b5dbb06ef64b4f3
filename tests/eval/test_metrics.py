"""J and F against values computed by hand with the DAVIS toolkit's rules."""

from __future__ import annotations

import numpy as np
import pytest

from savos.eval.metrics import (
    boundary_map,
    boundary_tolerance,
    contour_accuracy,
    decay,
    decay_bins,
    disk,
    mean,
    recall,
    region_similarity,
)


def block(size: tuple[int, int], top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[top : top + height, left : left + width] = True
    return mask


def test_region_similarity_by_hand() -> None:
    pred = block((10, 10), 0, 0, 4, 4)  # 16 pixels
    gt = block((10, 10), 2, 2, 4, 4)  # 16 pixels, overlap 2x2 = 4, union 28
    assert region_similarity(pred, gt) == pytest.approx(4 / 28)
    assert region_similarity(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert region_similarity(pred, np.zeros((10, 10))) == 0.0


def test_void_pixels_are_ignored() -> None:
    pred, gt = block((4, 4), 0, 0, 2, 2), block((4, 4), 0, 0, 2, 1)
    void = block((4, 4), 0, 1, 2, 1)  # the column where they disagree
    assert region_similarity(pred, gt, void) == 1.0


def test_boundary_map_follows_the_neighbour_rule() -> None:
    seg = block((4, 4), 1, 1, 2, 2)
    expected = np.array(
        [
            [1, 1, 1, 0],
            [1, 0, 1, 0],
            [1, 1, 1, 0],
            [0, 0, 0, 0],
        ],
        bool,
    )
    np.testing.assert_array_equal(boundary_map(seg), expected)


def test_last_row_and_column_rules() -> None:
    seg = np.zeros((3, 3), bool)
    seg[2, 0] = True  # bottom-left: the last row compares with its east neighbour only
    seg[0, 2] = True  # top-right: the last column compares with its south neighbour only
    # (0,1): east (0,2) differs. (0,2): south (1,2) differs. (1,0): south (2,0) differs. (2,0): east differs.
    # (1,1): E, S and SE are all 0 like itself. (2,2): the corner, never boundary.
    expected = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], bool)
    np.testing.assert_array_equal(boundary_map(seg), expected)


def test_tolerance_and_disk() -> None:
    assert boundary_tolerance(480, 854) == 8
    assert boundary_tolerance(100, 100) == 2  # ceil(0.008 * 141.4)
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    assert int(disk(2).sum()) == 13


def test_boundary_f_by_hand() -> None:
    # A k x k block has a boundary of 4k pixels under the neighbour rule (20 x 20: 80; 2 x 2: 8).
    gt = block((100, 100), 40, 40, 20, 20)
    assert int(boundary_map(gt).sum()) == 80
    spurious = gt | block((100, 100), 5, 5, 2, 2)  # far from the object (tolerance 2 px)
    # Precision 80/88, recall 1: F = 2 * (80/88) / (80/88 + 1) = 160/168 = 20/21.
    assert contour_accuracy(spurious, gt) == pytest.approx(20 / 21)
    assert contour_accuracy(gt, spurious) == pytest.approx(20 / 21)  # recall 80/88, precision 1
    # A one-pixel shift is within the 2-pixel tolerance.
    assert contour_accuracy(block((100, 100), 41, 40, 20, 20), gt) == 1.0


def test_boundary_f_edge_cases() -> None:
    empty, obj = np.zeros((50, 50), bool), block((50, 50), 10, 10, 5, 5)
    assert contour_accuracy(empty, empty) == 1.0
    assert contour_accuracy(empty, obj) == 0.0  # P = 1, R = 0
    assert contour_accuracy(obj, empty) == 0.0  # P = 0, R = 1
    far = block((50, 50), 40, 40, 5, 5)
    assert contour_accuracy(far, obj) == 0.0  # P + R = 0


def test_statistics() -> None:
    per_frame = np.array([0.4, 0.6, 0.9, 0.5])
    assert mean(per_frame) == pytest.approx(0.6)
    assert recall(per_frame) == 0.5  # 0.5 is not above 0.5
    assert mean(np.array([0.2, np.nan, 0.4])) == pytest.approx(0.3)


def test_decay_bins_match_the_toolkit_for_short_sequences() -> None:
    # N = 10: linspace(1, 10, 5) = 1, 3.25, 5.5, 7.75, 10 -> rounded 1, 3, 6, 8, 10 -> minus one 0, 2, 5, 7, 9.
    assert decay_bins(10) == [slice(0, 3), slice(2, 6), slice(5, 8), slice(7, 10)]
    assert decay(np.arange(10, dtype=float)) == pytest.approx(1.0 - 8.0)


def test_decay_is_right_past_256_frames() -> None:
    # N = 300: edges 0, 75, 150, 224, 299; the toolkit's uint8 cast would turn 299 into 43.
    assert decay_bins(300)[-1] == slice(224, 300)
    per_frame = np.r_[np.ones(100), np.zeros(200)]
    assert decay(per_frame) == pytest.approx(1.0)
