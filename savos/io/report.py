"""What a run produced, for a person: totals, failed videos and why, per-video counts and scores, and the videos
to check first: the lowest expected J first where the model has a calibration (``j_estimate``), else the
lowest mean score. Read from any job output URI."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from .compaction import dataset_paths
from .schema import SCHEMA, preview_key


@dataclass
class VideoStats:
    video_id: str
    frames: int
    objects: int
    mean_score: float  # over the (frame, object) rows where the object is present
    j_estimate: float | None = None  # expected J: mean over objects of each one's mean over its frames

    @property
    def priority(self) -> float:
        """What orders the review: the expected J where there is one, else the mean score."""
        return self.mean_score if self.j_estimate is None else self.j_estimate


@dataclass
class RunReport:
    output: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    videos: list[VideoStats] = field(default_factory=list)  # lowest priority first

    @property
    def estimated(self) -> bool:
        """Whether every video has an expected J (the ranking is by it)."""
        return bool(self.videos) and all(v.j_estimate is not None for v in self.videos)

    @property
    def ranked_by(self) -> str:
        return "expected J" if self.estimated else "mean score"

    @property
    def frames(self) -> int:
        return sum(v.frames for v in self.videos)


def load_report(output: str) -> RunReport:
    fs, root = fsspec.core.url_to_fs(output)
    root = root.rstrip("/")
    report = RunReport(output)
    for path in _json_files(fs, f"{root}/_runs"):
        report.runs.append(json.loads(fs.cat_file(path)))
    for path in _json_files(fs, f"{root}/failures"):
        record = json.loads(fs.cat_file(path))
        report.failures.append({k: record.get(k, "") for k in ("video_id", "error_type", "error", "time")})
    data_fs, files = dataset_paths(output)  # compacted files by their index, not a listing of every video
    if files:
        columns = ["video_id", "frame_idx", "obj_id", "score", "area", "j_estimate"]
        # SCHEMA: files written before j_estimate existed read it as null.
        table = pads.dataset(files, filesystem=data_fs, format="parquet", schema=SCHEMA).to_table(columns=columns)
        present = table.filter(pc.greater(table["area"], 0))
        counts = table.group_by("video_id").aggregate([("frame_idx", "count_distinct"), ("obj_id", "count_distinct")])
        scores = dict(
            zip(*present.group_by("video_id").aggregate([("score", "mean")]).to_pydict().values(), strict=True)
        )
        estimates = _video_estimates(table)
        for row in counts.to_pylist():
            video_id = row["video_id"]
            frames, objects = row["frame_idx_count_distinct"], row["obj_id_count_distinct"]
            stats = VideoStats(video_id, frames, objects, scores.get(video_id, 0.0), estimates.get(video_id))
            report.videos.append(stats)
        estimated = report.estimated  # one ranking for all: a mix of estimates and scores would not compare
        report.videos.sort(key=lambda v: (v.priority if estimated else v.mean_score, v.video_id))
    return report


def _video_estimates(table: pa.Table) -> dict[str, float]:
    """Each video's expected J: the mean over its objects of each object's mean ``j_estimate`` over its frames
    (none for a video with a row without one)."""
    unestimated = set(table.filter(pc.is_null(table["j_estimate"]))["video_id"].unique().to_pylist())
    per_object = table.group_by(["video_id", "obj_id"]).aggregate([("j_estimate", "mean")])
    per_video = per_object.group_by("video_id").aggregate([("j_estimate_mean", "mean")]).to_pylist()
    return {r["video_id"]: r["j_estimate_mean_mean"] for r in per_video if r["video_id"] not in unestimated}


def _json_files(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    """The ``.json`` files of one folder, in name order (listed, not globbed: an output prefix may hold ``[``)."""
    if not fs.isdir(folder):
        return []
    return sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".json"))


def format_report(report: RunReport, lowest: int = 10) -> str:
    lines = [f"output {report.output}"]
    for run in report.runs:
        carried = (
            f", {run['videos_carried']} carried from {run.get('carried_from')}" if run.get("videos_carried") else ""
        )
        lines.append(
            f"  run {run.get('run_id')}: {run.get('videos_done')} done, {run.get('videos_failed')} failed{carried}, "
            f"{run.get('frames')} frames, {run.get('frames_per_second')} frames/s"
        )
    lines.append(f"videos labelled: {len(report.videos)} ({report.frames} frames); failed: {len(report.failures)}")
    if report.failures:
        lines.append("failed videos:")
        lines += [f"  {f['video_id']}: {f['error_type']}: {f['error']}" for f in report.failures]
    if report.videos:
        lines.append(
            f"lowest {report.ranked_by} first (check these), {min(lowest, len(report.videos))} of {len(report.videos)}:"
        )
        lines.append(f"  {'video':<32} {'frames':>7} {'objects':>8} {'score':>6} {'exp. J':>6}")
        for v in report.videos[:lowest]:
            estimate = f"{v.j_estimate:>6.3f}" if v.j_estimate is not None else f"{'-':>6}"
            lines.append(f"  {v.video_id:<32} {v.frames:>7} {v.objects:>8} {v.mean_score:>6.3f} {estimate}")
    return "\n".join(lines)


def write_html(report: RunReport, lowest: int = 20) -> str:
    """One self-contained HTML page; contact sheets the job wrote (``previews/<id>.png``) are embedded."""
    fs, root = fsspec.core.url_to_fs(report.output)
    root = root.rstrip("/")
    esc = html.escape
    parts = [
        "<!doctype html><meta charset='utf-8'><title>SAVOS run report</title>",
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}"
        "img{max-width:100%;border:1px solid #ccc}</style>",
        f"<h1>SAVOS run report</h1><p>output <code>{esc(report.output)}</code>: {len(report.videos)} videos "
        f"labelled ({report.frames} frames), {len(report.failures)} failed.</p>",
        "<h2>Runs</h2><table><tr><th>run</th><th>done</th><th>failed</th><th>frames</th><th>frames/s</th></tr>",
    ]
    for run in report.runs:
        cells = [run.get(k) for k in ("run_id", "videos_done", "videos_failed", "frames", "frames_per_second")]
        parts.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
    parts.append("</table><h2>Failed videos</h2><table><tr><th>video</th><th>error</th></tr>")
    for failure in report.failures:
        error = f"{failure['error_type']}: {failure['error']}"
        parts.append(f"<tr><td>{esc(failure['video_id'])}</td><td>{esc(error)}</td></tr>")
    parts.append(f"</table><h2>Lowest {report.ranked_by} first</h2><table>")
    parts.append("<tr><th>video</th><th>frames</th><th>objects</th><th>mean score</th><th>expected J</th></tr>")
    for v in report.videos[:lowest]:
        estimate = f"{v.j_estimate:.3f}" if v.j_estimate is not None else "-"
        cells = [esc(v.video_id), v.frames, v.objects, f"{v.mean_score:.3f}", estimate]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</table><h2>Contact sheets</h2>")
    for v in report.videos[:lowest]:
        preview = f"{root}/{preview_key(v.video_id)}"
        if fs.exists(preview):
            data = base64.b64encode(fs.cat_file(preview)).decode("ascii")
            title = f"{esc(v.video_id)} ({report.ranked_by} {v.priority:.3f})"
            parts.append(f"<h3>{title}</h3><img src='data:image/png;base64,{data}'>")
    return "\n".join(parts) + "\n"
