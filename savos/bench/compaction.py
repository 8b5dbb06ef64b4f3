"""``savos bench compaction``: a job output of many small per-video files before and after ``savos compact``.

The output is synthesised (the job's schema and RLE, a few objects moving over a few frames per video), so the
measurement is of the layout alone: file count and bytes, the compaction's own time, and DuckDB reading one video
and the whole table from each layout, as ratios within one run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from ..io.compaction import compact, dataset_files
from ..io.reader import read_video_masks
from ..io.schema import encode_labels, masks_key, to_table


def write_synthetic_output(out: Path, videos: int, frames: int, height: int, width: int, seed: int = 0) -> None:
    """``videos`` per-video files as the job writes them: 1 to 4 boxes moving over ``frames`` frames each."""
    rng = np.random.default_rng(seed)
    for index in range(videos):
        video_id = f"video-{index:07d}"
        objects = int(rng.integers(1, 5))
        starts = rng.integers(0, [height // 2, width // 2], size=(objects, 2))
        rows = []
        for t in range(frames):
            labels = np.zeros((height, width), np.uint8)
            for obj, (y, x) in enumerate(starts, start=1):
                labels[y + t : y + t + height // 4, x + t : x + t + width // 4] = obj
            ids = list(range(1, objects + 1))
            rows += encode_labels(video_id, t, f"{t:05d}", labels, ids, [0.9] * objects, "synthetic")
        path = out / masks_key(video_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_table(rows), path, compression="zstd")


def _files_and_bytes(out: Path) -> tuple[int, int]:
    files = [p for p in out.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _best_seconds(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def _queries(out: Path, files: list[str] | str, probe: str, repeats: int) -> dict[str, Any]:
    """DuckDB: one video's rows, and a whole-table aggregate (a fresh connection each time: nothing cached from
    the run before); and ``read_video_masks`` of one video (decoded); each the best of ``repeats``."""
    import duckdb

    def one_video() -> object:
        query = "SELECT frame_idx, obj_id, rle_counts FROM read_parquet(?) WHERE video_id = ?"
        return duckdb.connect().execute(query, [files, probe]).fetchall()

    def whole_table() -> object:
        query = "SELECT video_id, count(*), avg(score) FROM read_parquet(?) GROUP BY video_id"
        return duckdb.connect().execute(query, [files]).fetchall()

    rows = duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()
    return {
        "rows": rows[0] if rows else 0,
        "one_video_s": _best_seconds(one_video, repeats),
        "whole_table_s": _best_seconds(whole_table, repeats),
        "read_video_masks_s": _best_seconds(lambda: read_video_masks(str(out), probe), repeats),
    }


def bench_compaction(videos: int, frames: int, height: int, width: int, repeats: int = 3) -> dict[str, Any]:
    """Every figure of one run, before and after compaction of a synthetic ``videos``-video output."""
    with tempfile.TemporaryDirectory(prefix="savos-bench-compaction-") as work:
        out = Path(work) / "out"
        start = time.perf_counter()
        write_synthetic_output(out, videos, frames, height, width)
        written_s = time.perf_counter() - start
        probe = f"video-{videos // 2:07d}"
        files_before, bytes_before = _files_and_bytes(out)
        before = _queries(out, f"{out}/masks/*/*.parquet", probe, repeats)
        start = time.perf_counter()
        result = compact(str(out))
        compact_s = time.perf_counter() - start
        files_after, bytes_after = _files_and_bytes(out)
        after = _queries(out, dataset_files(str(out)), probe, repeats)
    rows = {"before": before.pop("rows"), "after": after.pop("rows")}
    if rows["before"] != rows["after"]:
        raise RuntimeError(f"compaction changed the row count: {rows}")
    return {
        "config": {"videos": videos, "frames": frames, "height": height, "width": width, "repeats": repeats},
        "rows": rows,
        "files": {"before": files_before, "after": files_after},
        "bytes": {"before": bytes_before, "after": bytes_after},
        "seconds": {"write_output": written_s, "compact": compact_s, "before": before, "after": after},
        "speedup": {name: before[name] / after[name] for name in before},
        "compacted_files": result.files_written,
        "videos_per_s_compacted": videos / compact_s,
    }


def format_compaction(results: dict[str, Any]) -> str:
    c, s = results["config"], results["seconds"]
    lines = [
        f"{c['videos']} videos of {c['frames']} frames at {c['height']}x{c['width']}: "
        f"compaction took {s['compact']:.1f} s ({results['videos_per_s_compacted']:.0f} videos/s)",
        f"  {results['rows']['after']:,} rows; files {results['files']['before']} -> {results['files']['after']}, "
        f"bytes {results['bytes']['before']:,} -> {results['bytes']['after']:,}",
    ]
    for name in ("one_video_s", "whole_table_s", "read_video_masks_s"):
        what = name[:-2].replace("_", " ") if name.startswith("read") else f"DuckDB {name[:-2].replace('_', ' ')}"
        before, after = s["before"][name], s["after"][name]
        lines.append(f"  {what}: {before:.3f} s -> {after:.3f} s ({results['speedup'][name]:.1f}x)")
    return "\n".join(lines)
