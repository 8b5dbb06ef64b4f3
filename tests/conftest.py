from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from savos.data import write_palette_png
from savos.data.synthetic import SyntheticVideo
from savos.model import SAVOS, ModelConfig, build_savos
from tests.s3server import SeaweedS3

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


def write_dataset(root: Path, videos: dict[str, SyntheticVideo], *, davis: bool = True, every: int = 1) -> Path:
    """Write synthetic videos as a DAVIS root (``480p`` subfolders) or a YouTube-VOS root (none, and a mask
    only every ``every`` frames). Frames are JPEG, masks palette PNG."""
    sub = ("480p",) if davis else ()
    for name, video in videos.items():
        frame_dir = root.joinpath("JPEGImages", *sub, name)
        mask_dir = root.joinpath("Annotations", *sub, name)
        frame_dir.mkdir(parents=True)
        mask_dir.mkdir(parents=True)
        for t, (frame, ids) in enumerate(zip(video.frames, video.masks, strict=True)):
            Image.fromarray(frame).save(frame_dir / f"{t:05d}.jpg", quality=95)
            if t % every == 0:
                write_palette_png(mask_dir / f"{t:05d}.png", ids)
    return root


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A SeaweedFS S3 server for the session, its endpoint and keys exported as a user would (``AWS_*``).

    Ray instances started after this fixture inherit the variables, as a laptop user's local Ray does.
    """
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    saved = {key: os.environ.get(key) for key in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def stoppable_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeaweedS3]:
    """An S3 server of the test's own, to stop and start again."""
    import s3fs  # here, so that the GPU machine, which has no s3fs, can run the other tests

    server = SeaweedS3(tmp_path / "s3")
    server.start()
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()  # no filesystem (nor its cached listings) of another endpoint
    yield server
    server.stop()
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def checkpoint(tiny_model: SAVOS, tmp_path: Path) -> Path:
    """The tiny test model saved as a checkpoint, its id ``tiny``."""
    from savos.checkpoint import save_checkpoint

    save_checkpoint(path := tmp_path / "tiny.pt", tiny_model, meta={"checkpoint_id": "tiny"})
    return path
