"""Reading frames and masks, writing masks, and training data."""

from .errors import InputError
from .frames import FrameFolder, FrameSource, VideoFile, open_frames, read_image
from .masks import davis_palette, read_mask, write_palette_png

__all__ = [
    "FrameFolder",
    "FrameSource",
    "InputError",
    "VideoFile",
    "davis_palette",
    "open_frames",
    "read_image",
    "read_mask",
    "write_palette_png",
]
