"""``make demo``: the batch job on a small multi-object corpus the project generates itself (no download).

Writes ``OUT/corpus`` (DAVIS layout, first-frame masks only), runs the job on a local Ray instance with the
shipped checkpoint into ``OUT/labels`` (masks, and a contact sheet per video in ``OUT/labels/previews``), then
scores the masks against the generator's exact ground truth.

``--davis ROOT`` (``make demo-davis DAVIS=ROOT``) does the same on real video from a DAVIS-2016 copy of your own
(it is CC BY-NC 4.0, so the project does not ship it): the model card's dev sequences, never trained on, and a
two-object composite of two of them, scored with the DAVIS measures against their ground truth.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from savos.data import write_palette_png
from savos.data.composite import write_composite_sequence
from savos.data.synthetic import make_video
from savos.data.vos import DAVIS2016_DEV, Sequence, load_sequences, write_first_frame_copy
from savos.eval.metrics import region_similarity
from savos.eval.protocol import evaluate_sequence
from savos.eval.report import format_table
from savos.io import read_video_masks

from .config import JobConfig
from .prelabel import run

logger = logging.getLogger("savos_job.demo")

# (video id, objects, seed): a few clips with two to four objects that cross and occlude each other.
CORPUS = [("shapes-2", 2, 11), ("shapes-3", 3, 12), ("shapes-4", 4, 13), ("shapes-2b", 2, 14)]
FRAMES, HEIGHT, WIDTH, GRAIN = 16, 240, 432, 16  # background and object textures in 16-pixel blobs


def write_corpus(root: Path) -> dict[str, np.ndarray]:
    """The demo's clips under ``root``; returns their exact masks."""
    return {
        name: write_clip(root, name, FRAMES, HEIGHT, WIDTH, num_objects, seed) for name, num_objects, seed in CORPUS
    }


def write_clip(root: Path, name: str, frames: int, height: int, width: int, objects: int, seed: int) -> np.ndarray:
    """A synthetic clip as ``root/JPEGImages/<name>/%05d.jpg`` and ``root/Annotations/<name>/00000.png`` (the
    first frame's mask only, as a corpus to pre-label has); returns the exact masks ``(T, H, W)``."""
    video = make_video(frames, height, width, objects, seed, grain=GRAIN)
    frames_dir, masks_dir = root / "JPEGImages" / name, root / "Annotations" / name
    frames_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(video.frames):
        Image.fromarray(frame).save(frames_dir / f"{t:05d}.jpg", quality=95)
    write_palette_png(masks_dir / "00000.png", video.masks[0])
    return video.masks


# A two-object composite of two of the model card's dev sequences (DAVIS2016_DEV, never trained on).
DAVIS_PAIR = ("dog-agility", "bear")


def write_davis_corpus(corpus: Path, truth: Path, davis: Path) -> list[Sequence]:
    """The DAVIS sequences and their composite as a corpus under ``corpus`` (links to the frames, the first
    frame's mask only); the composite's frames and ground truth are written under ``truth``. Returns the
    sequences with their full ground truth."""
    sequences = load_sequences(davis, DAVIS2016_DEV)
    by_name = {seq.name: seq for seq in sequences}
    base, donor = (by_name[name] for name in DAVIS_PAIR)
    composite = write_composite_sequence(base, donor, truth, np.random.default_rng(0))
    sequences += load_sequences(truth, [composite])
    write_first_frame_copy(corpus, sequences)
    return sequences


def run_davis_demo(out: Path, davis: Path, num_actors: int = 2) -> dict[str, float]:
    """Label real DAVIS video with the job and score it; returns each video's J&F."""
    corpus, truth, labels = out / "davis-corpus", out / "davis-truth", out / "davis-labels"
    for folder in (corpus, truth, labels):
        shutil.rmtree(folder, ignore_errors=True)
    sequences = write_davis_corpus(corpus, truth, davis)
    summary = run(JobConfig(input=str(corpus), output=str(labels), num_actors=num_actors, preview_every=1))
    print(f"\nlabelled {summary['videos_done']} videos ({summary['frames']} frames), {summary['videos_failed']} failed")
    results = []
    for seq in sequences:
        masks = read_video_masks(str(labels), seq.name)
        truth_ids = [seq.labels(t) for t in range(len(seq))]
        results.append(evaluate_sequence(seq.name, truth_ids, list(masks.ids)))
    print("\nJ&F against the DAVIS ground truth (`fast`, the job's default; MODEL_CARD.md has every preset):")
    print(format_table(results))
    print(f"masks: {labels / 'masks'}; previews (contact sheets): {labels / 'previews'}/<video>.png")
    return {result.name: result.summary()["J&F-Mean"] for result in results}


def run_demo(out: Path, num_actors: int = 2) -> dict[str, float]:
    """Generate the corpus, label it, draw the previews; returns each video's mean IoU with the exact masks."""
    corpus, labels = out / "corpus", out / "labels"
    for folder in (corpus, labels):  # the demo owns these; a rerun starts afresh
        shutil.rmtree(folder, ignore_errors=True)
    truth = write_corpus(corpus)
    config = JobConfig(input=str(corpus), output=str(labels), num_actors=num_actors, preview_every=1)
    summary = run(config)
    print(f"\nlabelled {summary['videos_done']} videos ({summary['frames']} frames), {summary['videos_failed']} failed")

    ious = {}
    for name in truth:
        masks = read_video_masks(str(labels), name)
        scores = [
            region_similarity(masks.ids[t] == i, truth[name][t] == i) for t in range(1, FRAMES) for i in masks.obj_ids
        ]
        ious[name] = float(np.mean(scores))
        print(f"  {name}: {len(masks.obj_ids)} objects, mean IoU with the exact masks {ious[name]:.3f}")
    print(f"masks (Parquet, COCO RLE, one file per video): {labels / 'masks'}")
    print(f"run summary: {labels / '_runs'}")
    print(
        f"previews (contact sheets): {labels / 'previews'}/<video>.png, e.g. {labels / 'previews' / CORPUS[0][0]}.png"
    )
    print(f"report: savos report {labels} --html report.html")
    print(
        f"read them: python -c \"import pandas as pd; print(pd.read_parquet('{labels / 'masks'}', partitioning=None))\""
    )
    return ious


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--num-actors", type=int, default=2)
    parser.add_argument("--davis", type=Path, help="a DAVIS-2016 root of your own: label its dev sequences instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.davis is not None:
        run_davis_demo(args.out, args.davis, args.num_actors)
    else:
        run_demo(args.out, args.num_actors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
