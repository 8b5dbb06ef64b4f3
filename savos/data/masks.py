"""Object-id masks: read palette / grey / DAVIS-2016 binary PNGs, write DAVIS palette PNGs."""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from .errors import InputError

logger = logging.getLogger(__name__)

# Index 255 of DAVIS and PASCAL masks is "void" (pixels left unlabelled, often along object borders): no object.
VOID = 255

# A mask this many pixels off the frame size in each direction is resized (nearest) with a warning.
SIZE_TOLERANCE = 2


@cache
def davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC palette ``(256, 3)`` uint8: id i gets the colour made from its bits."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def read_mask(
    path: str | os.PathLike[str],
    frame_size: tuple[int, int] | None = None,
    *,
    allow_empty: bool = False,
    keep_void: bool = False,
) -> np.ndarray:
    """Object ids ``(H, W)`` uint8 from a mask PNG (0 is background).

    Accepted: palette PNGs (the index is the id), 8-bit grey ids (an alpha channel is ignored), and DAVIS-2016
    binary masks (only 0 and 255: one object, id 1). Elsewhere id 255 is :data:`VOID` and reads as background
    (unless ``keep_void``: evaluation ignores those pixels). Refused with :class:`InputError`: RGB or 16-bit masks,
    masks without any object (unless ``allow_empty``: ground truth and predictions may legitimately be empty),
    and masks whose size differs from ``frame_size = (H, W)`` by more than :data:`SIZE_TOLERANCE` pixels.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "LA":  # grey + alpha (one DAVIS-2016 mask is saved so): the ids are the grey channel
                ids = np.array(image.getchannel("L"))
                mode = "L"
            else:
                ids = np.array(image)
    except FileNotFoundError as err:
        raise InputError(path, "mask file not found") from err
    except OSError as err:
        raise InputError(path, f"cannot decode mask image ({err})") from err
    if mode in {"RGB", "RGBA", "CMYK", "YCbCr", "PA"}:
        raise InputError(path, f"mask is a colour image ({mode}); expected a palette or 8-bit grey id mask")
    if mode in {"I;16", "I;16B", "I;16L", "I", "F"} or ids.dtype not in (np.uint8, np.bool_):
        raise InputError(path, f"mask is {mode} ({ids.dtype}); expected 8-bit ids (palette or grey)")
    ids = ids.astype(np.uint8)
    if mode == "L" and set(np.unique(ids).tolist()) == {0, 255}:
        ids = (ids == 255).astype(np.uint8)  # DAVIS-2016 binary mask
    elif not keep_void and (void := ids == VOID).any():
        logger.info("%s: %d pixels of id %d (void, not an object) read as background", path, void.sum(), VOID)
        ids = np.where(void, 0, ids).astype(np.uint8)
    if not allow_empty and not ids.any():
        raise InputError(path, "mask has no object (every pixel is background)")
    if frame_size is not None and ids.shape != tuple(frame_size):
        ids = _fit_to_frame(path, ids, frame_size)
    return ids


def _fit_to_frame(path: Path, ids: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    (mh, mw), (fh, fw) = ids.shape, frame_size
    if abs(mh - fh) > SIZE_TOLERANCE or abs(mw - fw) > SIZE_TOLERANCE:
        turned = (mh, mw) == (fw, fh)
        hint = " (turned by 90 degrees: was it drawn on the frames before their EXIF rotation?)" if turned else ""
        raise InputError(path, f"mask is {mw}x{mh}, the frames are {fw}x{fh}{hint}")
    logger.warning("%s: mask is %dx%d, frames %dx%d; resized (nearest neighbour)", path, mw, mh, fw, fh)
    return np.asarray(Image.fromarray(ids).resize((fw, fh), Image.Resampling.NEAREST))


def write_palette_png(path: str | os.PathLike[str] | BinaryIO, ids: np.ndarray) -> None:
    """Write ``(H, W)`` ids (0..255) as a palette PNG with the DAVIS colours, to a path or a binary file."""
    ids = np.asarray(ids)
    if ids.min(initial=0) < 0 or ids.max(initial=0) > 255:
        raise ValueError(f"{path}: ids must lie in 0..255 for a palette PNG")
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(davis_palette().tobytes())
    image.save(path, format="PNG")
