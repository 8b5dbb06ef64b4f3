"""Compaction: per-video files merged into large ones with an index; every reader sees the same rows before and
after, an interrupted compaction leaves a readable output that a rerun completes, and a job's new videos written
meanwhile are kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from savos.data.synthetic import make_video
from savos.io import compact, dataset_files, masks_key, read_video_masks, to_table
from savos.io import compaction as compact_module
from savos.io.compaction import load_index, per_video_files
from savos.io.report import load_report
from savos.io.schema import encode_labels, schema_of_run

IDS = ["00042", "bear", "dog/agility", "z" * 200]  # a number-like id, a slash, an id whose key is cut

ROOT = Path(__file__).resolve().parents[2]


def write_output(out: Path, ids: list[str]) -> None:
    """Per-video files as the job writes them."""
    for seed, video_id in enumerate(ids):
        video = make_video(3 + seed % 3, height=16, width=24, num_objects=1 + seed % 2, seed=seed)
        rows = []
        for t, labels in enumerate(video.masks):
            obj_ids = sorted(int(i) for i in np.unique(video.masks[0]) if i)
            rows += encode_labels(video_id, t, f"{t:05d}", labels, obj_ids, [0.9] * len(obj_ids), "m")
        path = out / masks_key(video_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_table(rows), path)


Snapshot = dict[str, tuple[list[str], np.ndarray]]


def snapshot(out: Path, ids: list[str]) -> Snapshot:
    return {
        video_id: (read_video_masks(str(out), video_id).frame_names, read_video_masks(str(out), video_id).ids)
        for video_id in ids
    }


def assert_same(
    before: dict[str, tuple[list[str], np.ndarray]], after: dict[str, tuple[list[str], np.ndarray]]
) -> None:
    assert before.keys() == after.keys()
    for video_id, (names, ids) in before.items():
        assert after[video_id][0] == names
        np.testing.assert_array_equal(after[video_id][1], ids)


def whole_table(out: Path) -> list[tuple[str, int, int]]:
    """Every (video, frame, object) key, from the exact file list, with DuckDB."""
    rows = duckdb.execute(
        "SELECT video_id, frame_idx, obj_id FROM read_parquet(?) ORDER BY ALL", [dataset_files(str(out))]
    ).fetchall()
    assert len(rows) == len(set(rows)), "a row twice"
    return rows


def test_compaction_keeps_every_row_readable_by_every_reader(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, IDS)
    before, table_before = snapshot(out, IDS), whole_table(out)
    report_before = {(v.video_id, v.frames, v.objects) for v in load_report(str(out)).videos}

    result = compact(str(out), target_rows=8, group_rows=6)  # small files and groups: several of each
    assert (result.videos_compacted, result.videos_indexed, result.per_video_files_removed) == (4, 4, 4)
    assert result.files_written > 1
    assert per_video_files(str(out)) == {}
    assert not (out / "masks").exists() or not any((out / "masks").iterdir())
    assert_same(before, snapshot(out, IDS))
    assert whole_table(out) == table_before
    assert {(v.video_id, v.frames, v.objects) for v in load_report(str(out)).videos} == report_before
    dataset = pads.dataset(dataset_files(str(out)), format="parquet").to_table()
    assert dataset.num_rows == len(table_before)
    one = duckdb.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE video_id = 'bear'", [dataset_files(str(out))]
    ).fetchone()
    assert one == (sum(1 for r in table_before if r[0] == "bear"),)
    groups = set()
    for location in load_index(str(out)).videos.values():  # each video whole within one row group
        group = pq.ParquetFile(out / location.file).read_row_group(location.row_group)
        assert len(set(group.slice(location.offset, location.rows)["video_id"].to_pylist())) == 1
        assert location.offset + location.rows <= group.num_rows
        groups.add((location.file, location.row_group))
    assert 1 < len(groups) < len(IDS)  # several videos share a group: the footer stays small


def test_a_second_compaction_adds_new_videos_and_keeps_the_old_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, IDS[:2])
    first = compact(str(out))
    old_files = set(load_index(str(out)).files)
    write_output(out, IDS)  # the job labelled more (its resume skips the two compacted: see tests/jobs)
    for video_id in IDS[:2]:
        (out / masks_key(video_id)).unlink()
    second = compact(str(out))
    assert (second.videos_compacted, second.videos_indexed) == (2, 4)
    assert second.generation != first.generation
    assert old_files < set(load_index(str(out)).files)
    assert {r[0] for r in whole_table(out)} == set(IDS)
    again = compact(str(out))  # nothing new: a no-op
    assert (again.videos_compacted, again.generation) == (0, second.generation)


def test_the_index_records_the_run_that_wrote_each_video(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, IDS)
    for video_id, run_id in ((IDS[0], "run-1"), (IDS[2], "run-2")):  # as the job writes them; the others by hand
        path = out / masks_key(video_id)
        pq.write_table(pq.read_table(path).cast(schema_of_run(run_id)), path)
    first = compact(str(out), target_rows=5)

    def run_ids(generation: str) -> dict[str, str | None]:
        index = pq.read_table(out / "_compaction" / f"index-{generation}.parquet").to_pydict()
        return dict(zip(index["video_id"], index["run_id"], strict=True))

    assert run_ids(first.generation) == {IDS[0]: "run-1", IDS[1]: None, IDS[2]: "run-2", IDS[3]: None}
    write_output(out, ["late"])
    path = out / masks_key("late")
    pq.write_table(pq.read_table(path).cast(schema_of_run("run-3")), path)
    second = compact(str(out))
    assert run_ids(second.generation) == {IDS[0]: "run-1", IDS[1]: None, IDS[2]: "run-2", IDS[3]: None, "late": "run-3"}
    index = json.loads((out / "_compaction" / "CURRENT").read_text())["index"]  # the README's query, as written
    per_run = duckdb.sql(f"SELECT run_id, count(*) videos, sum(frames) FROM '{out}/{index}' GROUP BY 1").fetchall()
    assert sorted((run, videos) for run, videos, _ in per_run if run) == [("run-1", 1), ("run-2", 1), ("run-3", 1)]


KILLED_AT = """
import os, sys
from savos.io import compaction as c
where = sys.argv[2]
if where == "swap":  # killed just before CURRENT is written: the new files are written, not in force
    write = c._write_bytes
    c._write_bytes = lambda fs, path, data: os._exit(9) if path.endswith("CURRENT") else write(fs, path, data)
else:  # killed after the swap, one per-video file removed
    remove = c._remove
    c._remove = lambda fs, paths: (remove(fs, list(paths)[:1]), os._exit(9))
c.compact(sys.argv[1], target_rows=5)
"""


@pytest.mark.parametrize("where", ["swap", "cleanup"])
def test_a_killed_compaction_leaves_a_readable_output_and_a_rerun_completes_it(tmp_path: Path, where: str) -> None:
    out = tmp_path / "out"
    write_output(out, IDS)
    before, table_before = snapshot(out, IDS), whole_table(out)
    killed = subprocess.run([sys.executable, "-c", KILLED_AT, str(out), where], cwd=ROOT, check=False)
    assert killed.returncode == 9
    assert_same(before, snapshot(out, IDS))
    assert whole_table(out) == table_before
    assert len(load_report(str(out)).videos) == len(IDS)
    assert (load_index(str(out)).generation is None) == (where == "swap")

    result = compact(str(out), target_rows=5)
    assert result.videos_indexed == len(IDS)
    assert per_video_files(str(out)) == {}
    written = {p.parent.name for p in (out / "compacted").glob("*/*.parquet")}
    assert written == {load_index(str(out)).generation}, "files of the killed compaction are left"
    assert len(list((out / "_compaction").glob("index-*"))) == 1
    assert_same(before, snapshot(out, IDS))
    assert whole_table(out) == table_before


def test_a_video_the_job_writes_during_a_compaction_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_output(out, IDS[:2])
    listed = compact_module.per_video_files

    def listed_then_job_writes(output: str) -> dict[str, str]:
        found = listed(output)
        write_output(out, [IDS[2]])  # the job finishes a video after the compaction listed the output
        return found

    monkeypatch.setattr(compact_module, "per_video_files", listed_then_job_writes)
    result = compact(str(out))
    monkeypatch.undo()
    assert result.videos_compacted == 2
    assert (out / masks_key(IDS[2])).exists()
    assert {r[0] for r in whole_table(out)} == set(IDS[:3])
    assert read_video_masks(str(out), IDS[2]).ids.shape[0] == 3  # written as the first video of its call
    assert compact(str(out)).videos_compacted == 1
