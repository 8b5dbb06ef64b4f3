"""Label Studio tasks with the job's masks as predictions, and the labelling config they go with.

Label Studio's video task type holds boxes only, so a video becomes one image task per frame (``data.image``
from a URL template, with the video id and frame beside it) whose prediction holds one ``brushlabels`` region
per object present: the mask in Label Studio's brush RLE (encoded by ``label-studio-sdk``), the object's label,
its score (the expected J where the model has a calibration, else its mean probability), and the model
version; the prediction's score, the mean of its regions', is what Label Studio sorts tasks by. The label is
what names an object across a video's frames in Label Studio, so each object needs a label of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from savos.data.errors import InputError

from ..reader import VideoMasks

BRUSH = "mask"  # the <BrushLabels> name in the config
IMAGE = "image"  # the <Image> name
DEFAULT_IMAGE_URL = "{video_id}/{frame}.jpg"


def labelstudio_tasks(
    video: VideoMasks, labels: Mapping[int, str], image_url: str = DEFAULT_IMAGE_URL
) -> list[dict[str, Any]]:
    """One task per frame of ``video``, its masks as one prediction; ``image_url`` formats ``video_id``, ``frame``."""
    brush = _brush()
    names = [labels[obj_id] for obj_id in video.obj_ids]
    if len(set(names)) < len(names):
        raise ValueError(
            f"video {video.video_id}: two objects share a label ({names}); Label Studio tells objects apart by label"
        )
    _, height, width = video.ids.shape
    tasks = []
    for t, (frame, ids) in enumerate(zip(video.frame_names, video.ids, strict=True)):
        regions, scores = [], []
        for obj_id in video.obj_ids:
            mask = ids == obj_id
            if not mask.any():
                continue
            score = float(video.priority_scores(obj_id)[t])
            scores.append(score)
            regions.append(
                {
                    "id": f"object-{obj_id}",
                    "type": "brushlabels",
                    "from_name": BRUSH,
                    "to_name": IMAGE,
                    "original_width": width,
                    "original_height": height,
                    "image_rotation": 0,
                    "value": {
                        "format": "rle",
                        "rle": brush.mask2rle(mask.astype(np.uint8) * 255),
                        "brushlabels": [labels[obj_id]],
                    },
                    "score": score,
                }
            )
        tasks.append(
            {
                "data": {
                    IMAGE: image_url.format(video_id=video.video_id, frame=frame),
                    "video_id": video.video_id,
                    "frame": frame,
                    "frame_idx": t,
                },
                "predictions": [
                    {
                        "model_version": video.model,
                        "score": float(np.mean(scores)) if scores else 0.0,
                        "result": regions,
                    }
                ],
            }
        )
    return tasks


def labelstudio_config(label_names: Iterable[str]) -> str:
    """The labelling config the tasks go with: the frame, and a brush label per object name."""
    choices = "".join(f"\n    <Label value={quoteattr(name)}/>" for name in dict.fromkeys(label_names))
    return (
        "<View>\n"
        f'  <Image name="{IMAGE}" value="${IMAGE}" zoom="true"/>\n'
        f'  <BrushLabels name="{BRUSH}" toName="{IMAGE}">{choices}\n  </BrushLabels>\n'
        "</View>\n"
    )


def write_labelstudio(
    video: VideoMasks, path: Path, labels: Mapping[int, str], image_url: str = DEFAULT_IMAGE_URL
) -> Path:
    """Write the tasks of ``video`` as a JSON list (what Label Studio's import takes) to ``path``."""
    path.write_text(json.dumps(labelstudio_tasks(video, labels, image_url)))
    return path


def decode_brush(region: Mapping[str, Any]) -> np.ndarray:
    """The ``(H, W)`` bool mask of a ``brushlabels`` region, by ``label-studio-sdk``'s own decoder."""
    rle = region["value"]["rle"]
    height, width = region["original_height"], region["original_width"]
    pixels = np.reshape(_brush().decode_rle(rle), (height, width, 4))
    return pixels[:, :, 3] > 127


def read_labelstudio(path: Path, names: Mapping[int, str] | None = None) -> tuple[list[str], np.ndarray]:
    """``(frame names, (T, H, W) ids)`` from a video's tasks: each frame's newest annotation, else its prediction.

    Objects are found by label: ``names`` (object id -> label) where given, else labels ``object <id>``.
    """
    tasks = json.loads(path.read_text())
    by_label = {name: obj_id for obj_id, name in (names or {}).items()}
    frames: dict[int, tuple[str, list[dict[str, Any]]]] = {}
    size: tuple[int, int] | None = None
    for task in tasks:
        data = task.get("data", {})
        t = int(data.get("frame_idx", -1))
        if t < 0 or t in frames:
            raise InputError(path, f"task {task.get('id', '?')}: frame_idx {t} missing or repeated")
        done = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        results = (done[-1] if done else (task.get("predictions") or [{}])[-1]).get("result", [])
        regions = [r for r in results if r.get("type") == "brushlabels"]
        for region in regions:
            size = size or (region["original_height"], region["original_width"])
            if (region["original_height"], region["original_width"]) != size:
                raise InputError(
                    path,
                    f"frame {t}: a mask of {region['original_width']}x{region['original_height']},"
                    f" the others {size[1]}x{size[0]}",
                )
        frames[t] = (str(data.get("frame", f"{t:05d}")), regions)
    if sorted(frames) != list(range(len(frames))):
        raise InputError(path, f"the tasks' frame_idx are not 0..{len(frames) - 1}")
    if size is None:
        raise InputError(path, "no brushlabels region in any task: the frame size is unknown")
    ids = np.zeros((len(frames), *size), np.int32)
    for t, (_, regions) in frames.items():
        for region in regions:
            label = region["value"]["brushlabels"][0]
            obj_id = by_label.get(label) or _numbered(label)
            if obj_id is None:
                raise InputError(path, f"frame {t}: label {label!r} names no object")
            ids[t][decode_brush(region)] = obj_id
    return [frames[t][0] for t in range(len(frames))], ids


def _numbered(label: str) -> int | None:
    match = re.fullmatch(r"object (\d+)", label)
    return int(match.group(1)) if match else None


def _brush() -> Any:
    try:
        from label_studio_sdk.converter import brush
    except ImportError as error:
        raise ImportError("Label Studio export needs label-studio-sdk: pip install 'savos[labelstudio]'") from error
    return brush
