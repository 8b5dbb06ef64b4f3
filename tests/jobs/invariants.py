"""The job's promise, checked after every fault and bad-input scenario: each input video has exactly one of
{complete masks, failure record}; no (frame, object) row twice; nothing temporary or partial left behind."""

from __future__ import annotations

import json

import fsspec
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from savos.files import TEMPORARY_SUFFIX
from savos_job.output import OutputLocation
from savos_job.retry import RetryPolicy


def output_at(uri: str) -> OutputLocation:
    """The job's output at ``uri``, with the default retry policy."""
    return OutputLocation.open(uri, RetryPolicy())


def assert_accounted(output: str, video_ids: list[str]) -> tuple[set[str], set[str]]:
    """``(labelled, failed)`` ids, after checking the invariants for ``video_ids``."""
    fs, root = fsspec.core.url_to_fs(output)
    labelled, failed = set(), set()
    for video_id in video_ids:
        has_masks = fs.exists(output_at(output).masks(video_id))
        has_failure = fs.exists(output_at(output).failure(video_id))
        assert has_masks != has_failure, f"{video_id!r}: masks {has_masks}, failure record {has_failure}"
        (labelled if has_masks else failed).add(video_id)
        if has_masks:
            with fs.open(output_at(output).masks(video_id), "rb") as f:
                pq.read_metadata(f)  # a complete Parquet file (footer present)
    files = [p for p in fs.find(root) if "/_runs/" not in p]
    assert not [p for p in files if p.endswith(TEMPORARY_SUFFIX)], "temporary files left under the output"
    masks = [p for p in files if "/masks/" in p]
    assert len(masks) == len(labelled), f"{len(masks)} mask files for {len(labelled)} labelled videos"
    if masks:
        table = pads.dataset(f"{root}/masks", filesystem=fs, format="parquet").to_table(
            columns=["video_id", "frame_idx", "obj_id"]
        )
        keys = set(zip(*table.to_pydict().values(), strict=True))
        assert len(keys) == table.num_rows, "a (video, frame, object) row appears twice"
    return labelled, failed


def failure_records(output: str) -> dict[str, str]:
    """``{video_id: "ErrorType: message"}`` of the failure records under ``output``: what a failed assertion on the
    job's exit status should show."""
    fs, root = fsspec.core.url_to_fs(output)
    records = {}
    for path in fs.glob(f"{root}/failures/*.json"):
        record = json.loads(fs.cat_file(path))
        records[record["video_id"]] = f"{record['error_type']}: {record['error']}"
    return records
