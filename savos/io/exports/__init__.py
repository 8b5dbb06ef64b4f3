"""One labelled video in the formats other tools read, and back (the readers prove the round trips).

Dataset formats (``datasets``): ``davis``, ``sav``, ``ytvis``. Annotation tools: ``cvat`` and ``cvat-images``
(``cvat``), ``labelstudio`` (``labelstudio``), where people correct the pre-labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..reader import VideoMasks
from ..schema import video_key
from .cvat import LAYOUTS, read_cvat, write_cvat
from .datasets import DATASET_FORMATS, read_dataset, write_dataset
from .labelstudio import DEFAULT_IMAGE_URL, labelstudio_config, read_labelstudio, write_labelstudio

FORMATS = (*DATASET_FORMATS, *LAYOUTS, "labelstudio")
LABELSTUDIO_CONFIG = "labelstudio-config.xml"


def object_labels(obj_ids: list[int], names: Mapping[int, str] | None = None) -> dict[int, str]:
    """A label per object: its name from ``names`` where given, else ``object <id>``."""
    names = names or {}
    return {obj_id: names.get(obj_id, f"object {obj_id}") for obj_id in obj_ids}


def export_video(
    video: VideoMasks,
    fmt: str,
    dest: Path,
    *,
    names: Mapping[int, str] | None = None,
    image_url: str = DEFAULT_IMAGE_URL,
) -> Path:
    """Write ``video`` in ``fmt`` under ``dest``; returns the folder or file written.

    ``names`` (object id -> label) is used by the annotation-tool formats; ``image_url`` (a template of
    ``video_id`` and ``frame``) is where Label Studio finds each frame.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    dest.mkdir(parents=True, exist_ok=True)
    if fmt in DATASET_FORMATS:
        return write_dataset(video, fmt, dest)
    labels = object_labels(video.obj_ids, names)
    key = video_key(video.video_id)
    if fmt in LAYOUTS:
        return write_cvat(video, dest / f"{key}.xml", labels, layout=fmt)
    return write_labelstudio(video, dest / f"{key}.json", labels, image_url)


def write_labelstudio_config(dest: Path, label_names: list[str]) -> Path:
    """The labelling config for tasks exported into ``dest``, with every label they use."""
    path = dest / LABELSTUDIO_CONFIG
    path.write_text(labelstudio_config(label_names))
    return path


def read_export(path: Path, fmt: str, names: Mapping[int, str] | None = None) -> tuple[list[str], np.ndarray]:
    """``(frame names, (T, H, W) ids)`` back from an export: what a tool importing it would see.

    ``names`` (object id -> label): how Label Studio's labels map back to object ids, as given to the export.
    """
    if fmt in LAYOUTS:
        return read_cvat(path)
    if fmt in DATASET_FORMATS:
        return read_dataset(path, fmt)
    if fmt == "labelstudio":
        return read_labelstudio(path, names)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "export_video", "object_labels", "read_export", "write_labelstudio_config"]
