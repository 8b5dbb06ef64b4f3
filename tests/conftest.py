from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from savos.model import SAVOS, ModelConfig, build_savos

# Real data lives beside the project (../shared/data); SAVOS_SHARED_DATA points elsewhere.
SHARED_DATA = Path(os.environ.get("SAVOS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# A small decoder keeps CPU tests fast; the encoder is the real efficientnet_lite0 (random weights).
TINY = ModelConfig(backbone="efficientnet_lite0", decoder_channels=16, attention_reduction=4)


def shared_data(relative: str) -> Path:
    """A path under ../shared/data, or skip the test when the data is not there (a fresh clone)."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    return path


@pytest.fixture
def tiny_model() -> SAVOS:
    torch.manual_seed(0)
    return build_savos(TINY, backbone_weights="none").eval()


def write_mp4(path: Path, frames: np.ndarray, fps: int = 10) -> None:
    """Encode ``(T, H, W, 3)`` RGB frames as an MPEG-4 file with OpenCV."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
