"""The batch job's output: its table schema, where each video's masks live, a reader for them, and compaction."""

from .compaction import compact, dataset_files
from .reader import VideoMasks, read_video_masks
from .schema import SCHEMA, MaskRow, decode_row, encode_frame, masks_key, to_table

__all__ = [
    "SCHEMA",
    "MaskRow",
    "VideoMasks",
    "compact",
    "dataset_files",
    "decode_row",
    "encode_frame",
    "masks_key",
    "read_video_masks",
    "to_table",
]
