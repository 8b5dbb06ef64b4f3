"""Dataset formats: what VOS training and evaluation code reads (the readers prove the round trip).

- ``davis``: ``DEST/<video>/<frame>.png``, DAVIS palette PNGs (index = object id), what every VOS tool reads.
- ``sav``: ``DEST/<video>.json`` in the SA-V style: per frame, one COCO RLE per object (``masklet``), with
  ``masklet_id`` and the frame each object first appears in (``masklet_first_appeared_frame``).
- ``ytvis``: ``DEST/<video>.json``, COCO-style video instance segmentation (YouTube-VIS layout): one video, one
  annotation per object with a segmentation (RLE, or null where absent), box and area per frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from savos.data import read_mask, write_palette_png

from ..reader import VideoMasks
from ..schema import video_key

DATASET_FORMATS = ("davis", "sav", "ytvis")


def write_dataset(video: VideoMasks, fmt: str, dest: Path) -> Path:
    """Write ``video`` in the dataset format ``fmt`` under ``dest``; returns the folder or file written."""
    if fmt == "davis":
        folder = dest / video_key(video.video_id)
        folder.mkdir(exist_ok=True)
        if max(video.obj_ids, default=0) > 255:
            raise ValueError(f"video {video.video_id}: object ids above 255 do not fit a palette PNG")
        for name, ids in zip(video.frame_names, video.ids, strict=True):
            write_palette_png(folder / f"{name}.png", ids.astype(np.uint8))
        return folder
    document = _sav(video) if fmt == "sav" else _ytvis(video)
    path = dest / f"{video_key(video.video_id)}.json"
    path.write_text(json.dumps(document))
    return path


def _rle(mask: np.ndarray) -> dict[str, Any]:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _first_frames(video: VideoMasks) -> list[int]:
    present = [(video.ids == obj_id).any(axis=(1, 2)) for obj_id in video.obj_ids]
    return [int(np.argmax(p)) if p.any() else -1 for p in present]


def _sav(video: VideoMasks) -> dict[str, Any]:
    frames, height, width = video.ids.shape
    return {
        "video_id": video.video_id,
        "video_height": height,
        "video_width": width,
        "video_frame_count": frames,
        "frame_names": video.frame_names,
        "masklet_id": video.obj_ids,
        "masklet_num": len(video.obj_ids),
        "masklet_first_appeared_frame": _first_frames(video),
        "masklet": [[_rle(ids == obj_id) for obj_id in video.obj_ids] for ids in video.ids],
        "model": video.model,
    }


def _ytvis(video: VideoMasks) -> dict[str, Any]:
    frames, height, width = video.ids.shape
    annotations = []
    for n, obj_id in enumerate(video.obj_ids, start=1):
        segmentations: list[dict[str, Any] | None] = []
        boxes: list[list[float] | None] = []
        areas: list[float | None] = []
        for ids in video.ids:
            mask = ids == obj_id
            if mask.any():
                rle = _rle(mask)
                coded = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
                segmentations.append(rle)
                boxes.append([float(v) for v in coco_mask.toBbox(coded)])
                areas.append(float(coco_mask.area(coded)))
            else:
                segmentations.append(None)
                boxes.append(None)
                areas.append(None)
        annotations.append(
            {
                "id": n,
                "video_id": 1,
                "category_id": 1,
                "instance_id": obj_id,  # the id in the corpus's masks
                "iscrowd": 0,
                "height": height,
                "width": width,
                "length": 1,
                "segmentations": segmentations,
                "bboxes": boxes,
                "areas": areas,
            }
        )
    return {
        "info": {"description": f"SAVOS pre-labels ({video.model})"},
        "licenses": [],
        "categories": [{"id": 1, "name": "object", "supercategory": "object"}],
        "videos": [
            {
                "id": 1,
                "name": video.video_id,
                "width": width,
                "height": height,
                "length": frames,
                "file_names": [f"{video.video_id}/{name}.jpg" for name in video.frame_names],
            }
        ],
        "annotations": annotations,
    }


def read_dataset(path: Path, fmt: str) -> tuple[list[str], np.ndarray]:
    """``(frame names, (T, H, W) ids)`` back from a dataset export: what a tool importing it would see."""
    if fmt == "davis":
        pngs = sorted(path.glob("*.png"))
        return [p.stem for p in pngs], np.stack([read_mask(p, allow_empty=True) for p in pngs])
    document = json.loads(path.read_text())
    if fmt == "sav":
        shape = (document["video_frame_count"], document["video_height"], document["video_width"])
        ids = np.zeros(shape, np.int32)
        for t, objects in enumerate(document["masklet"]):
            for obj_id, rle in zip(document["masklet_id"], objects, strict=True):
                ids[t][_decode(rle)] = obj_id
        return document["frame_names"], ids
    if fmt == "ytvis":
        (meta,) = document["videos"]
        ids = np.zeros((meta["length"], meta["height"], meta["width"]), np.int32)
        for annotation in document["annotations"]:
            for t, rle in enumerate(annotation["segmentations"]):
                if rle is not None:
                    ids[t][_decode(rle)] = annotation["instance_id"]
        return [Path(name).stem for name in meta["file_names"]], ids
    raise ValueError(f"unknown format {fmt!r}")


def _decode(rle: dict[str, Any]) -> np.ndarray:
    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)
