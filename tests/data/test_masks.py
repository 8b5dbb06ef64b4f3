from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from savos.data import InputError, davis_palette, read_mask, write_palette_png


def ids_image(height: int = 6, width: int = 8) -> np.ndarray:
    ids = np.zeros((height, width), np.uint8)
    ids[1:3, 1:4] = 1
    ids[4:, 5:] = 2
    return ids


def test_davis_palette_colours() -> None:
    palette = davis_palette()
    assert palette[0].tolist() == [0, 0, 0]
    assert palette[1].tolist() == [128, 0, 0]
    assert palette[2].tolist() == [0, 128, 0]
    assert palette[3].tolist() == [128, 128, 0]
    assert palette[255].tolist() == [224, 224, 192]


def test_palette_png_round_trip(tmp_path) -> None:
    write_palette_png(tmp_path / "m.png", ids_image())
    with Image.open(tmp_path / "m.png") as image:
        assert image.mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), ids_image())


def test_grey_ids_and_davis2016_binary_masks(tmp_path) -> None:
    Image.fromarray(ids_image()).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "grey.png"), ids_image())
    Image.fromarray((ids_image() > 0).astype(np.uint8) * 255).save(tmp_path / "binary.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "binary.png"), (ids_image() > 0).astype(np.uint8))


def test_a_mask_one_pixel_off_is_resized_with_a_warning(tmp_path, caplog) -> None:
    write_palette_png(tmp_path / "m.png", ids_image(6, 7))
    with caplog.at_level(logging.WARNING):
        ids = read_mask(tmp_path / "m.png", frame_size=(6, 8))
    assert ids.shape == (6, 8)
    assert "m.png: mask is 7x6, frames 8x6; resized" in caplog.text


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: Image.fromarray(np.zeros((6, 8, 3), np.uint8) + 1), "colour image"),
        (lambda: Image.fromarray(ids_image().astype(np.uint16) * 300), "expected 8-bit ids"),
        (lambda: Image.fromarray(np.zeros((6, 8), np.uint8)), "has no object"),
        (lambda: Image.fromarray(ids_image(20, 30)), "mask is 30x20, the frames are 8x6"),
    ],
    ids=["rgb", "16-bit", "empty", "wrong-size"],
)
def test_bad_masks_name_the_file_and_the_problem(tmp_path, make, problem) -> None:
    path = tmp_path / "bad.png"
    make().save(path)
    with pytest.raises(InputError, match=problem) as info:
        read_mask(path, frame_size=(6, 8))
    assert str(info.value).startswith(str(path))


def test_unreadable_mask(tmp_path) -> None:
    (tmp_path / "m.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot decode mask image"):
        read_mask(tmp_path / "m.png")
