"""Overlays and contact sheets: masks coloured by the DAVIS palette, frames laid out in order."""

from __future__ import annotations

import numpy as np
import pytest

from savos.data import davis_palette
from savos.io.preview import contact_sheet, overlay


def test_overlay_tints_objects_in_their_palette_colour_and_leaves_background() -> None:
    frame = np.full((60, 80, 3), 100, np.uint8)
    ids = np.zeros((60, 80), np.uint8)
    ids[5:25, 5:25] = 1
    ids[30:55, 40:75] = 3
    out = overlay(frame, ids, alpha=0.5)
    np.testing.assert_array_equal(out[ids == 0][:10], frame[ids == 0][:10])
    for obj_id, (y, x) in ((1, (8, 20)), (3, (33, 70))):  # inside the object, clear of outline and label
        expected = (0.5 * 100 + 0.5 * davis_palette()[obj_id].astype(np.float32)).astype(np.uint8)
        np.testing.assert_array_equal(out[y, x], expected)
    assert (out[5, 5:25] == davis_palette()[1]).all()  # the outline


def test_overlay_refuses_a_mask_of_another_size() -> None:
    with pytest.raises(ValueError, match="frame is 80x60, mask 40x30"):
        overlay(np.zeros((60, 80, 3), np.uint8), np.zeros((30, 40), np.uint8))


def test_contact_sheet_lays_out_every_nth_frame() -> None:
    frames = [np.full((50, 100, 3), 10 * t, np.uint8) for t in range(10)]
    ids = [np.zeros((50, 100), np.uint8) for _ in range(10)]
    sheet = contact_sheet(frames, ids, [f"{t:05d}" for t in range(10)], every=3, columns=2, tile_width=100)
    assert sheet.shape == (2 * (50 + 20), 200, 3)  # frames 0, 3, 6, 9 in two rows of two
    assert [int(sheet[25 + 70 * (n // 2), 50 + 100 * (n % 2), 0]) for n in range(4)] == [0, 30, 60, 90]
