"""Frames and masks as other tools write them: 16-bit PNGs, EXIF-rotated JPEGs, unpadded numbers, a FIFO, a
header claiming a huge picture, upper-case suffixes, the void index 255."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from savos.data import InputError, write_palette_png
from savos.data.annotations import sparse_annotations
from savos.data.frames import FrameFolder, read_image
from savos.data.masks import read_mask


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_16_bit_frames_keep_their_picture(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    Image.fromarray(ramp).save(path := tmp_path / "00000.png")
    with Image.open(path) as image:
        assert image.mode.startswith("I")  # the case: Pillow's convert("RGB") clipped these to white
    frame = read_image(path)
    assert frame.shape == (8, 64, 3)
    np.testing.assert_allclose(frame[0, :, 0], np.linspace(0, 255, 64), atol=1)


def test_exif_orientation_is_applied_and_the_size_agrees(tmp_path: Path) -> None:
    raw = np.zeros((90, 160, 3), np.uint8)
    raw[:10, :, 0] = 255  # a red band along the stored top edge
    image = Image.fromarray(raw)
    exif = image.getexif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    folder = tmp_path / "frames"
    folder.mkdir()
    image.save(folder / "00000.jpg", exif=exif, quality=95)
    frames = FrameFolder(folder)
    (frame,) = list(frames)
    assert frame.shape[:2] == frames.size == (160, 90)
    assert frame[:, -10:, 0].mean() > 200  # the band is now on the right, as a viewer shows it


def test_a_mask_drawn_on_the_unturned_frame_gets_a_hint(tmp_path: Path) -> None:
    write_palette_png(path := tmp_path / "m.png", np.ones((90, 160), np.uint8))
    with pytest.raises(InputError, match="turned by 90 degrees"):
        read_mask(path, (160, 90))


def test_unpadded_frame_numbers_are_in_numeric_order(tmp_path: Path) -> None:
    for index in range(12):
        Image.fromarray(np.full((4, 4, 3), index, np.uint8)).save(tmp_path / f"{index}.png")
    frames = FrameFolder(tmp_path)
    assert frames.names == [str(i) for i in range(12)]
    assert [int(frame[0, 0, 0]) for frame in frames] == list(range(12))


def test_two_frames_of_one_name_are_refused(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "00000.jpg")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "00000.png")
    with pytest.raises(InputError, match="two frames named '00000'") as caught:
        FrameFolder(tmp_path)
    assert caught.value.path == str(tmp_path)


def test_a_fifo_among_the_frames_is_refused_not_waited_on(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "00000.jpg")
    os.mkfifo(tmp_path / "00001.jpg")
    with pytest.raises(InputError, match="not a regular file") as caught:
        FrameFolder(tmp_path)
    assert caught.value.path.endswith("00001.jpg")


def test_a_header_claiming_a_huge_picture_names_the_file(tmp_path: Path) -> None:
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path = tmp_path / "00000.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b""))
    with pytest.raises(InputError, match="cannot") as caught:
        read_image(path)
    assert caught.value.path == str(path)
    with pytest.raises(InputError) as caught:
        _ = FrameFolder(tmp_path).size
    assert caught.value.path == str(path)


def test_upper_case_png_masks_are_read(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(2):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(frames / f"{index:05d}.JPG")
    masks = tmp_path / "masks"
    masks.mkdir()
    write_palette_png(masks / "00000.PNG", np.pad(np.ones((4, 4), np.uint8), 2))
    annotations = sparse_annotations(masks, FrameFolder(frames))
    assert list(annotations) == [0]
    assert annotations[0].sum() == 16


def test_void_255_is_no_object(tmp_path: Path) -> None:
    ids = np.zeros((10, 10), np.uint8)
    ids[2:8, 2:8] = 255  # a void border around object 1
    ids[3:7, 3:7] = 1
    write_palette_png(path := tmp_path / "m.png", ids)
    read = read_mask(path)
    assert set(np.unique(read).tolist()) == {0, 1}
    assert (read == 1).sum() == 16
    assert (read_mask(path, keep_void=True) == 255).sum() == 36 - 16  # evaluation ignores those pixels
    binary = np.where(ids == 1, 255, 0).astype(np.uint8)
    Image.fromarray(binary, mode="L").save(davis := tmp_path / "davis2016.png")
    assert (read_mask(davis) == 1).sum() == 16  # DAVIS-2016's 0/255 masks: 255 is the object
