"""A synthetic corpus of any size, and an actor that labels it at no cost: the driver measured at scale.

Each video of the synthetic manifest is named ``sim://video/<id>?frames=F&ms_per_frame=T`` (``&fail=1`` for one
that fails). :class:`SimulatedActor` stands in for the labelling actor: its "model" sleeps ``F x T`` ms, then the
video's outcome is written through the job's own output path, as the real actor writes it: a Parquet of one row
per frame (one object, a small fixed mask, RLE from pycocotools) or a failure record. Its process imports neither
torch nor the model, so a hundred of them fit on a laptop and what is measured is the job around the model: the
driver, Ray's calls, the listing, resume checks and storage.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pyarrow.parquet as pq
from pycocotools import mask as coco_mask

from savos.io.schema import MaskRow, schema_of_run, to_table

from .config import JobConfig
from .corpus import VideoTask
from .output import OutputLocation, failure_record
from .pool import PoolActor

SCHEME = "sim"
MODEL_ID = "simulated"


@dataclass(frozen=True)
class SimulatedVideo:
    """What a synthetic video costs: its frames, the model's time per frame, and whether it fails."""

    frames: int
    ms_per_frame: float
    fails: bool = False

    def uri(self, video_id: str) -> str:
        query = {"frames": self.frames, "ms_per_frame": self.ms_per_frame, **({"fail": 1} if self.fails else {})}
        return f"{SCHEME}://video/{video_id}?{urlencode(query)}"

    @classmethod
    def from_uri(cls, uri: str) -> SimulatedVideo:
        parts = urlsplit(uri)
        if parts.scheme != SCHEME:
            raise ValueError(f"{uri}: not a simulated video ({SCHEME}://...)")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return cls(int(query["frames"]), float(query["ms_per_frame"]), query.get("fail") == "1")


def manifest_rows(videos: int, frames: int, ms_per_frame: float, fail_every: int = 0) -> Iterator[dict[str, str]]:
    """``videos`` manifest rows; every ``fail_every``-th video fails (0: none does)."""
    for index in range(videos):
        video_id = f"video-{index:07d}"
        fails = fail_every > 0 and index % fail_every == fail_every - 1
        source = SimulatedVideo(frames, ms_per_frame, fails).uri(video_id)
        yield {"video_id": video_id, "video": source, "masks": f"{SCHEME}://masks/{video_id}"}


def write_manifest(path: Path, videos: int, frames: int, ms_per_frame: float, fail_every: int = 0) -> Path:
    """The synthetic manifest as JSONL at ``path``, written as it is generated (nothing held)."""
    with path.open("w") as f:
        for row in manifest_rows(videos, frames, ms_per_frame, fail_every):
            f.write(json.dumps(row) + "\n")
    return path


class SimulatedActor(PoolActor):
    """The labelling actor with a model that sleeps: each call writes its video's masks (or failure record) through
    the job's :class:`~savos_job.output.OutputLocation` and returns the same result row as the real actor."""

    def __init__(self, config: dict[str, Any]) -> None:
        job, run_id = JobConfig.from_actor_args(config)
        self.output = OutputLocation.open(job.output, job.retry_policy())
        self.schema = schema_of_run(run_id)
        mask = np.zeros((16, 16), np.uint8)
        mask[4:12, 4:12] = 1
        self.rle = coco_mask.encode(np.asfortranarray(mask))

    async def label_video(self, task: str) -> dict[str, Any]:
        video_task = VideoTask.from_json(task)
        video = SimulatedVideo.from_uri(video_task.source)
        started = time.time()
        await asyncio.sleep(video.frames * video.ms_per_frame / 1000)
        if video.fails:
            record = failure_record(
                video_task.video_id, video_task.to_row(), "SimulatedFailure", "this video fails", "", MODEL_ID
            )
            await asyncio.to_thread(self.output.put, self.output.failure(video_task.video_id), record)
            status, error = "failed", "SimulatedFailure: this video fails"
        else:
            data = self.masks(video_task.video_id, video.frames)
            await asyncio.to_thread(self.output.put, self.output.masks(video_task.video_id), data)
            status, error = "done", ""
        finished = time.time()
        return {
            "video_id": video_task.video_id,
            "status": status,
            "frames": video.frames if status == "done" else 0,
            "objects": 1,
            "seconds": finished - started,
            "started": started,
            "finished": finished,
            "error": error,
        }

    def masks(self, video_id: str, frames: int) -> bytes:
        """The video's Parquet: one row per frame, the same small mask on each."""
        area = int(coco_mask.area(self.rle))
        bbox = tuple(float(v) for v in coco_mask.toBbox(self.rle))
        rows = [
            MaskRow(video_id, i, f"{i:05d}", 1, 16, 16, self.rle["counts"], area, bbox, 1.0, MODEL_ID)
            for i in range(frames)
        ]
        buffer = io.BytesIO()
        pq.write_table(to_table(rows).cast(self.schema), buffer)
        return buffer.getvalue()
