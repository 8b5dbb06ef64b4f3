"""Training: clips from video, still images and lucid dreams; the recurrent loss; the loop."""

from .clips import Clip, ClipSampler
from .config import TrainConfig
from .loop import RunOptions, train

__all__ = ["Clip", "ClipSampler", "RunOptions", "TrainConfig", "train"]
