"""CVAT's XML (version 1.1), both layouts, and a reader for them.

- ``cvat`` ("CVAT for video 1.1"): what a CVAT video task imports as tracks: one ``<track>`` per object, a
  ``<mask>`` shape on every frame from the object's first appearance (a keyframe each: masks are not
  interpolated), ``outside="1"`` on the frames where it is absent after that.
- ``cvat-images`` ("CVAT for images 1.1"): one ``<image>`` per frame with a ``<mask>`` per object present. CVAT
  imports it into a video task too, as separate shapes per frame instead of tracks. It is also the layout that
  Datumaro (1.13) decodes masks from: its importer sizes a mask by the ``<image>`` around it, so it fails on
  masks inside a ``<track>``, which carries no image.

A mask is CVAT's own RLE over the object's bounding box (``left top width height``): run lengths in row-major
order, the first run background. Every shape carries the corpus's object id as an ``object_id`` attribute
(declared on each label, not editable in CVAT) so that corrections come back to the right object whatever
track ids CVAT gives on import, and its score on that frame as a ``score`` attribute (the expected J where the
model has a calibration, else its mean probability: see :meth:`~savos.io.reader.VideoMasks.priority_scores`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from savos.data.errors import InputError

from ..reader import VideoMasks

OBJECT_ID = "object_id"
SCORE = "score"
LAYOUTS = {"cvat": "interpolation", "cvat-images": "annotation"}


def write_cvat(video: VideoMasks, path: Path, labels: Mapping[int, str], *, layout: str = "cvat") -> Path:
    """Write ``video`` to ``path`` as CVAT XML in ``layout`` (``cvat`` or ``cvat-images``)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown CVAT layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    _, height, width = video.ids.shape
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    root.append(_meta(video, labels, LAYOUTS[layout]))
    if layout == "cvat":
        for n, obj_id in enumerate(video.obj_ids):
            track = _track(video, obj_id, labels[obj_id], n)
            if track is not None:
                root.append(track)
    else:
        for t, (name, ids) in enumerate(zip(video.frame_names, video.ids, strict=True)):
            image = ET.SubElement(root, "image", id=str(t), name=f"{name}.jpg", width=str(width), height=str(height))
            for obj_id in video.obj_ids:
                mask = ids == obj_id
                if mask.any():
                    score = float(video.priority_scores(obj_id)[t])
                    image.append(_mask(mask, obj_id, score, label=labels[obj_id]))
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _meta(video: VideoMasks, labels: Mapping[int, str], mode: str) -> ET.Element:
    frames, height, width = video.ids.shape
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    for tag, text in [
        ("name", video.video_id),
        ("size", str(frames)),
        ("mode", mode),
        ("overlap", "0"),
        ("start_frame", "0"),
        ("stop_frame", str(frames - 1)),
    ]:
        ET.SubElement(task, tag).text = text
    declared = ET.SubElement(task, "labels")
    for name in dict.fromkeys(labels[obj_id] for obj_id in video.obj_ids):
        label = ET.SubElement(declared, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "mask"
        attributes = ET.SubElement(label, "attributes")
        for name, values in [(OBJECT_ID, "0;65535;1"), (SCORE, "0;1;0.001")]:
            attribute = ET.SubElement(attributes, "attribute")
            for tag, text in [
                ("name", name),
                ("mutable", "False"),
                ("input_type", "number"),
                ("default_value", "0"),
                ("values", values),
            ]:
                ET.SubElement(attribute, tag).text = text
    size = ET.SubElement(task, "original_size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(meta, "source").text = f"SAVOS pre-labels ({video.model})"
    return meta


def _track(video: VideoMasks, obj_id: int, label: str, track_id: int) -> ET.Element | None:
    track = ET.Element("track", id=str(track_id), label=label, source="auto")
    last: ET.Element | None = None
    for t, ids in enumerate(video.ids):
        mask, score = ids == obj_id, float(video.priority_scores(obj_id)[t])
        if mask.any():
            last = _mask(mask, obj_id, score, frame=t)
            track.append(last)
        elif last is not None:  # gone: the same geometry, outside
            gone = _mask_element(obj_id, score, {**last.attrib, "frame": str(t), "outside": "1"})
            track.append(gone)
    return track if last is not None else None


def _mask(
    mask: np.ndarray, obj_id: int, score: float, *, frame: int | None = None, label: str | None = None
) -> ET.Element:
    rle, left, top, width, height = encode_cvat_rle(mask)
    attrib = {"label": label} if label is not None else {"frame": str(frame), "keyframe": "1", "outside": "0"}
    attrib |= {
        "source": "auto",
        "occluded": "0",
        "rle": rle,
        "left": str(left),
        "top": str(top),
        "width": str(width),
        "height": str(height),
        "z_order": "0",
    }
    return _mask_element(obj_id, score, attrib)


def _mask_element(obj_id: int, score: float, attrib: dict[str, str]) -> ET.Element:
    element = ET.Element("mask", attrib)
    ET.SubElement(element, "attribute", name=OBJECT_ID).text = str(obj_id)
    ET.SubElement(element, "attribute", name=SCORE).text = f"{score:.3f}"
    return element


def encode_cvat_rle(mask: np.ndarray) -> tuple[str, int, int, int, int]:
    """``(rle, left, top, width, height)`` of a non-empty ``(H, W)`` bool mask, over its bounding box."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    crop = mask[top : rows[-1] + 1, left : cols[-1] + 1].ravel()
    changes = np.flatnonzero(crop[1:] != crop[:-1]) + 1
    runs = np.diff(np.concatenate([[0], changes, [crop.size]]))
    if crop[0]:
        runs = np.concatenate([[0], runs])
    width, height = int(cols[-1] + 1 - left), int(rows[-1] + 1 - top)
    return ", ".join(str(int(r)) for r in runs), left, top, width, height


def decode_cvat_rle(rle: str, left: int, top: int, width: int, height: int, frame_size: tuple[int, int]) -> np.ndarray:
    """The ``(H, W)`` bool mask of a CVAT ``<mask>``; ``ValueError`` if it does not fit its box or the frame."""
    runs = np.array([int(r) for r in rle.split(",")], np.int64)
    if (runs < 0).any() or runs.sum() != width * height:
        raise ValueError(f"the RLE covers {runs.sum()} pixels, its box {width}x{height}")
    if left < 0 or top < 0 or left + width > frame_size[1] or top + height > frame_size[0]:
        raise ValueError(
            f"the box {width}x{height} at ({left}, {top}) is outside the {frame_size[1]}x{frame_size[0]} frame"
        )
    values = np.arange(len(runs)) % 2 == 1
    mask = np.zeros(frame_size, bool)
    mask[top : top + height, left : left + width] = np.repeat(values, runs).reshape(height, width)
    return mask


def read_cvat(path: Path) -> tuple[list[str], np.ndarray]:
    """``(frame names, (T, H, W) ids)`` from CVAT XML of either layout, objects by their ``object_id``."""
    root = ET.parse(path).getroot()
    task = root.find("meta/task")
    if task is None:
        raise InputError(path, "no <meta><task> (not CVAT XML 1.1)")
    frames = int(task.findtext("size", "0"))
    width, height = (int(task.findtext(f"original_size/{d}", "0")) for d in ("width", "height"))
    images = root.findall("image")
    if images:
        width, height = int(images[0].get("width", "0")), int(images[0].get("height", "0"))
        frames = max(frames, len(images))
    ids = np.zeros((frames, height, width), np.int32)
    names = [f"{t:05d}" for t in range(frames)]
    for image in images:
        t = int(image.get("id", "-1"))
        names[t] = Path(image.get("name", names[t])).stem
        for shape in image.findall("mask"):
            _paint(ids, t, shape, path)
    for track in root.findall("track"):
        for shape in track.findall("mask"):
            if shape.get("outside") != "1":
                _paint(ids, int(shape.get("frame", "-1")), shape, path)
    return names, ids


def _paint(ids: np.ndarray, t: int, shape: ET.Element, path: Path) -> None:
    if not 0 <= t < len(ids):
        raise InputError(path, f"a mask on frame {t}, outside the task's frames 0..{len(ids) - 1}")
    obj_id = shape.findtext(f"attribute[@name='{OBJECT_ID}']")
    if obj_id is None:
        raise InputError(path, f"a mask on frame {t} has no {OBJECT_ID} attribute")
    left, top, width, height = (int(shape.get(k, "-1")) for k in ("left", "top", "width", "height"))
    try:
        mask = decode_cvat_rle(shape.get("rle", ""), left, top, width, height, (ids.shape[1], ids.shape[2]))
    except ValueError as error:
        raise InputError(path, f"object {obj_id}, frame {t}: {error}") from None
    ids[t][mask] = int(obj_id)
