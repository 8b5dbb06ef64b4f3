"""JPEG decoding speed: PIL on one CPU thread against nvJPEG on the GPU (one frame at a time and batched)."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..data.synthetic import make_video


def bench_decode(height: int, width: int, count: int = 64, device: str = "cuda") -> dict[str, Any]:
    clip = make_video(count, height, width, num_objects=2, seed=5)
    encoded = []
    for frame in clip.frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=90)
        encoded.append(buffer.getvalue())
    start = time.perf_counter()
    for data in encoded:
        with Image.open(io.BytesIO(data)) as image:
            np.asarray(image.convert("RGB"))
    cpu = count / (time.perf_counter() - start)
    result: dict[str, Any] = {"frames": count, "height": height, "width": width, "cpu_pil_frames_per_s": cpu}
    if device == "cpu" or not torch.cuda.is_available():
        return result
    from torchvision.io import decode_jpeg

    tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in encoded]
    decode_jpeg(tensors[:4], device=device)  # warm-up: nvJPEG handles
    for name, batch in (("gpu_one_by_one_frames_per_s", 1), ("gpu_batched_16_frames_per_s", 16)):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, count, batch):
            decoded = decode_jpeg(tensors[i : i + batch], device=device)
            # To the host and back would undo the point: frames stay on the GPU for the model.
            del decoded
        torch.cuda.synchronize()
        result[name] = count / (time.perf_counter() - start)
    return result
