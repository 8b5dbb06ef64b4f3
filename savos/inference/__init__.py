"""Propagation of first-frame (or sparse) masks through a video."""

from .aggregate import probs_to_ids, soft_aggregate
from .engine import PAPER_SCALES, FrameResult, Predictor, VideoEnd, resolve_device
from .options import EngineOptions
from .state import VideoState

__all__ = [
    "PAPER_SCALES",
    "EngineOptions",
    "FrameResult",
    "Predictor",
    "VideoEnd",
    "VideoState",
    "probs_to_ids",
    "resolve_device",
    "soft_aggregate",
]
