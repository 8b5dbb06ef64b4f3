"""The job's output table: one row per (frame, object), the mask as COCO compressed RLE. Defined here only.

| column       | type           | meaning                                                                   |
|--------------|----------------|---------------------------------------------------------------------------|
| video_id     | string         | the corpus's id of the video                                              |
| frame_idx    | int32          | 0-based position of the frame in the video                                |
| frame_name   | string         | the frame's file stem (``%05d`` for a video file)                         |
| obj_id       | int32          | the object's id as in the input masks                                     |
| height       | int32          | frame height in pixels                                                    |
| width        | int32          | frame width in pixels                                                     |
| rle_counts   | binary         | ``pycocotools.mask.encode`` counts (column-major, compressed)             |
| area         | int64          | mask pixels                                                               |
| bbox         | list<float32>  | ``[x, y, w, h]`` of the mask (COCO convention), zeros for an empty mask   |
| score        | float32        | mean aggregated probability of the object over its mask (0 when empty)    |
| model        | string         | the checkpoint id that produced the mask                                  |
| j_estimate   | float32, null  | the score as an expected J (the checkpoint's calibration; null: none)     |

Decode a row with ``pycocotools.mask.decode({"size": [height, width], "counts": rle_counts})``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np
import pyarrow as pa
from pycocotools import mask as coco_mask

SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("frame_idx", pa.int32(), nullable=False),
        pa.field("frame_name", pa.string(), nullable=False),
        pa.field("obj_id", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("rle_counts", pa.binary(), nullable=False),
        pa.field("area", pa.int64(), nullable=False),
        pa.field("bbox", pa.list_(pa.float32(), 4), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("j_estimate", pa.float32()),  # files written before it have no such column: read it as null
    ]
)


RUN_ID_KEY = b"savos.run_id"  # in a per-video file's schema metadata: the job run that wrote it
CORRECTIONS_KEY = b"savos.corrections"  # ... and the digest of the corrections it was labelled with, if any


def schema_of_run(run_id: str | None, corrections: str | None = None) -> pa.Schema:
    """:data:`SCHEMA` with the run that writes a file in its metadata (none outside a job's run), and the digest
    of the corrections the video was labelled with (:func:`savos.io.corrections.corrections_digest`)."""
    metadata = {RUN_ID_KEY: run_id.encode() if run_id else None, CORRECTIONS_KEY: corrections and corrections.encode()}
    kept = {key: value for key, value in metadata.items() if value}
    return SCHEMA.with_metadata(kept) if kept else SCHEMA


def run_id_of(schema: pa.Schema) -> str | None:
    """The run recorded by :func:`schema_of_run`; None for a file written outside a run or before runs were."""
    value = (schema.metadata or {}).get(RUN_ID_KEY)
    return value.decode() if value else None


def corrections_of(schema: pa.Schema) -> str | None:
    """The corrections digest recorded by :func:`schema_of_run`; None for a video labelled without corrections."""
    value = (schema.metadata or {}).get(CORRECTIONS_KEY)
    return value.decode() if value else None


@dataclass(frozen=True)
class MaskRow:
    """One (frame, object) row before it becomes Arrow."""

    video_id: str
    frame_idx: int
    frame_name: str
    obj_id: int
    height: int
    width: int
    rle_counts: bytes
    area: int
    bbox: tuple[float, ...]  # [x, y, w, h]
    score: float
    model: str
    j_estimate: float | None = None


def encode_frame(
    video_id: str,
    frame_idx: int,
    frame_name: str,
    labels: np.ndarray,
    obj_ids: Sequence[int],
    probs: np.ndarray,
    model: str,
) -> list[MaskRow]:
    """Rows for every object of one frame: ``labels (H, W)`` ids, ``probs (M, H, W)`` aggregated probabilities.

    Every tracked object gets a row, empty or not, so "object absent in this frame" is explicit.
    """
    masks = [labels == obj_id for obj_id in obj_ids]
    scores = [float(probs[m][mask].mean()) if mask.any() else 0.0 for m, mask in enumerate(masks)]
    return encode_labels(video_id, frame_idx, frame_name, labels, obj_ids, scores, model)


def encode_labels(
    video_id: str,
    frame_idx: int,
    frame_name: str,
    labels: np.ndarray,
    obj_ids: Sequence[int],
    scores: Sequence[float],
    model: str,
    estimates: Sequence[float] | None = None,
) -> list[MaskRow]:
    """:func:`encode_frame` with each object's score (its mean probability over its mask) already computed,
    for instance on the GPU by :func:`savos.inference.aggregate.labels_and_scores`; ``estimates``: each
    object's expected J (:mod:`savos.calibration`), where the model has a calibration."""
    height, width = labels.shape
    rows = []
    given = list(estimates) if estimates is not None else [None] * len(obj_ids)
    for obj_id, score, estimate in zip(obj_ids, scores, given, strict=True):
        mask = labels == obj_id
        rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        area = int(coco_mask.area(rle))
        bbox = tuple(float(v) for v in coco_mask.toBbox(rle))  # [0, 0, 0, 0] for an empty mask
        rows.append(
            MaskRow(
                video_id,
                frame_idx,
                frame_name,
                int(obj_id),
                height,
                width,
                rle["counts"],
                area,
                bbox,
                float(score) if area else 0.0,
                model,
                None if estimate is None else float(estimate),
            )
        )
    return rows


def conform(table: pa.Table) -> pa.Table:
    """``table`` with :data:`SCHEMA`'s columns: a nullable column it lacks (a file written before the column
    existed) is added as nulls."""
    for field in SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(len(table), field.type))
    return table.select(SCHEMA.names).cast(SCHEMA)


def to_table(rows: Sequence[MaskRow]) -> pa.Table:
    """An Arrow table with :data:`SCHEMA` (an empty table when there are no rows)."""
    columns = {name: [getattr(row, name) for row in rows] for name in SCHEMA.names}
    columns["bbox"] = [list(row.bbox) for row in rows]
    return pa.table(columns, schema=SCHEMA)


# Keys longer than this are cut and made unique by a hash: with the folder's prefix, the file suffix and a
# temporary name's 44 bytes (``.<key>.json.<32 hex>.tmp``) every name stays well under a file system's 255 bytes.
MAX_KEY_BYTES = 128
_HASH_HEX = 32


def video_key(video_id: str) -> str:
    """The video id as one safe path segment: percent-encoded (UTF-8) except letters, digits and ``-_.~``, and
    never ``.``, ``..`` or a leading dot. Ids with ``/``, ``..`` or bytes that are not UTF-8 (a file name read with
    ``surrogateescape``) cannot reach outside the output prefix, and pyarrow's hive reading decodes the key back.

    A key longer than :data:`MAX_KEY_BYTES` (a long id, or a few dozen CJK characters at 9 bytes each) becomes its
    first :data:`MAX_KEY_BYTES` bytes, cut before a partial escape, then ``~`` and a SHA-256 of the id: distinct
    for distinct ids, and always longer than any uncut key, so the two kinds never meet. The id itself is kept
    whole in the rows' ``video_id`` column and in failure records.
    """
    raw = video_id.encode("utf-8", "surrogateescape")
    key = quote(raw, safe="-_.~")
    key = key.replace(".", "%2E") if key.startswith(".") else key
    if len(key) <= MAX_KEY_BYTES:
        return key
    cut = MAX_KEY_BYTES
    while "%" in key[cut - 2 : cut]:  # never end inside an escape
        cut -= 1
    return f"{key[:cut]}~{hashlib.sha256(raw).hexdigest()[:_HASH_HEX]}"


def display_id(video_id: str) -> str:
    """The id as text that any tool can store: itself when it is UTF-8, else with ``\\xNN`` for the odd bytes."""
    return video_id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


MASKS_FILE = "part-0.parquet"  # the one file of a video's masks folder


def masks_key(video_id: str) -> str:
    """Where a video's rows live, relative to the output root: hive-partitioned by ``video_id``, except for ids
    whose key is cut (:func:`video_key`), whose folder has no ``video_id=`` so that hive readers take the id from
    the rows, where it is whole."""
    key = video_key(video_id)
    return f"masks/{key if len(key) > MAX_KEY_BYTES else f'video_id={key}'}/{MASKS_FILE}"


def failure_key(video_id: str) -> str:
    """Where the record of a video that could not be labelled lives, relative to the output root."""
    return f"failures/{video_key(video_id)}.json"


def preview_key(video_id: str) -> str:
    """Where a video's contact sheet lives, relative to the output root."""
    return f"previews/{video_key(video_id)}.png"


def decode_row(rle_counts: bytes, height: int, width: int) -> np.ndarray:
    """The ``(H, W)`` bool mask of one row."""
    return coco_mask.decode({"size": [height, width], "counts": rle_counts}).astype(bool)
