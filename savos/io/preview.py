"""Pictures of masks for a person to check: frames with coloured masks and object ids, and contact sheets.

Colours are the DAVIS palette, so an id has the same colour here as in exported palette PNGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from savos.data import davis_palette


def overlay(frame: np.ndarray, ids: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``frame (H, W, 3)`` RGB with each object tinted in its palette colour, outlined, and labelled by id."""
    if frame.shape[:2] != ids.shape:
        raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, mask {ids.shape[1]}x{ids.shape[0]}")
    palette = davis_palette()
    out = frame.astype(np.float32)
    objects = ids > 0
    out[objects] = (1 - alpha) * out[objects] + alpha * palette[ids[objects].astype(np.int64) % 256]
    out_u8 = out.astype(np.uint8)
    scale = max(frame.shape[:2]) / 640
    for obj_id in np.unique(ids[objects]):
        mask = (ids == obj_id).astype(np.uint8)
        colour = tuple(int(c) for c in palette[int(obj_id) % 256])
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out_u8, contours, -1, colour, max(1, round(2 * scale)))
        ys, xs = np.nonzero(mask)
        _label(out_u8, str(int(obj_id)), (int(xs.mean()), int(ys.mean())), max(0.4, scale))
    return out_u8


def _label(image: np.ndarray, text: str, centre: tuple[int, int], scale: float) -> None:
    """White text with a black outline, readable on any colour."""
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(scale * 1.5))
    (w, h), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = (centre[0] - w // 2, centre[1] + h // 2)
    cv2.putText(image, text, origin, font, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def contact_sheet(
    frames: Sequence[np.ndarray],
    ids: Sequence[np.ndarray],
    names: Sequence[str],
    every: int = 1,
    columns: int = 4,
    tile_width: int = 320,
) -> np.ndarray:
    """One RGB image: every ``every``-th frame overlaid with its masks, captioned with its name, in a grid."""
    if not len(frames) == len(ids) == len(names):
        raise ValueError(f"{len(frames)} frames, {len(ids)} masks and {len(names)} names")
    if not frames:
        raise ValueError("no frames")
    picked = list(range(0, len(frames), max(1, every)))
    height, width = frames[0].shape[:2]
    tile_height = round(height * tile_width / width)
    rows = -(-len(picked) // columns)
    sheet = np.full((rows * (tile_height + 20), min(columns, len(picked)) * tile_width, 3), 255, np.uint8)
    for n, t in enumerate(picked):
        tile = cv2.resize(overlay(frames[t], ids[t]), (tile_width, tile_height), interpolation=cv2.INTER_AREA)
        y, x = (n // columns) * (tile_height + 20), (n % columns) * tile_width
        sheet[y : y + tile_height, x : x + tile_width] = tile
        cv2.putText(sheet, names[t], (x + 4, y + tile_height + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    return sheet


def write_overlay_video(frames: Sequence[np.ndarray], ids: Sequence[np.ndarray], path: Path, fps: float = 10) -> None:
    """Frames with their masks as an MPEG-4 (``.mp4``, OpenCV) or an animated GIF (``.gif``, Pillow)."""
    if not frames or len(frames) != len(ids):
        raise ValueError(f"{len(frames)} frames and {len(ids)} masks")
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"{path}: a preview video is .mp4 or .gif")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(overlay(f, i)) for f, i in zip(frames, ids, strict=True)]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
        return
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write MPEG-4 here")
    try:
        for frame, labels in zip(frames, ids, strict=True):
            writer.write(cv2.cvtColor(overlay(frame, labels), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def write_preview(
    frames: Sequence[np.ndarray], ids: Sequence[np.ndarray], names: Sequence[str], path: Path, every: int = 5
) -> None:
    """A contact sheet (``.png``/``.jpg``, every ``every``-th frame) or an overlay video (``.mp4``/``.gif``)."""
    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        from PIL import Image

        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(contact_sheet(frames, ids, names, every=every)).save(path)
    else:
        write_overlay_video(frames, ids, path)
