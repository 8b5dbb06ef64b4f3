"""The batch job's output: its table schema, where each video's masks live, and a reader for them."""

from .reader import VideoMasks, read_video_masks
from .schema import SCHEMA, MaskRow, decode_row, encode_frame, masks_key, to_table

__all__ = ["SCHEMA", "MaskRow", "VideoMasks", "decode_row", "encode_frame", "masks_key", "read_video_masks", "to_table"]
