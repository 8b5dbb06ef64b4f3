"""``make demo``: segment a small multi-object corpus that the project generates itself (no download).

Until the Ray batch job lands (issue 4), the demo runs the propagation engine directly on each video.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from PIL import Image

from .checkpoint import load_default_model
from .data import FrameFolder, write_palette_png
from .data.annotations import first_frame_annotation
from .data.synthetic import make_video
from .inference import Predictor
from .segment import segment_to_pngs

logger = logging.getLogger("savos.demo")

CORPUS = [("shapes-2", 2, 11), ("shapes-3", 3, 12), ("shapes-4", 4, 13)]


def write_corpus(root: Path, num_frames: int = 12, height: int = 120, width: int = 160) -> list[Path]:
    """DAVIS layout: ``JPEGImages/<video>/%05d.jpg`` and a first-frame ``Annotations/<video>/00000.png``."""
    videos = []
    for name, num_objects, seed in CORPUS:
        video = make_video(num_frames, height, width, num_objects, seed)
        frames_dir, masks_dir = root / "JPEGImages" / name, root / "Annotations" / name
        frames_dir.mkdir(parents=True, exist_ok=True)
        masks_dir.mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(video.frames):
            Image.fromarray(frame).save(frames_dir / f"{t:05d}.jpg", quality=95)
        write_palette_png(masks_dir / "00000.png", video.masks[0])
        videos.append(frames_dir)
    return videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    corpus = args.out / "corpus"
    model, _ = load_default_model()
    predictor = Predictor(model)
    for frames_dir in write_corpus(corpus):
        frames = FrameFolder(frames_dir)
        annotations = first_frame_annotation(corpus / "Annotations" / frames_dir.name / "00000.png", frames)
        written = segment_to_pngs(predictor, frames, annotations, args.out / "masks" / frames_dir.name)
        logger.info("%s: %d frames segmented", frames_dir.name, written)
    print(f"corpus (frames + first-frame masks): {corpus}")
    print(f"masks (DAVIS palette PNGs, one per frame): {args.out / 'masks'}")


if __name__ == "__main__":
    main()
