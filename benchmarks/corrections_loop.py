"""The corrections loop on real video, measured: label, fix one frame in CVAT XML, import it, rerun.

A corpus of DAVIS-2016 train-split sequences (first-frame masks only) is labelled by the job (v1, the default
checkpoint, a local Ray). The video's ground truth of frame k stands in for a person's fix of object 1: v1's
masks are exported as CVAT XML with that frame replaced, and ``savos import-corrections`` reads it back into a
corrections store. The job then writes v2 with ``--corrections`` and ``--carry-from v1``. Checked (the script
exits 1 on any failure): v2's summary says one video recomputed and the others carried; frames before k equal
v1's (with ``--backward``, both versions propagate backwards too, and only frame 0 must equal v1's); frame k
equals the fix; and it reports J against the ground truth after k (and on frames 1..k-1), v1 against v2. From
the repository root:

    python benchmarks/corrections_loop.py --sequence bmx-bumps --k 30 --others boat hike --json out.json

The data stays where it is (``../shared/data/davis2016-train``): the corpus is made of links to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from savos.cli import main as savos
from savos.data.vos import load_sequences, write_first_frame_copy
from savos.eval.metrics import region_similarity
from savos.io import read_video_masks
from savos.io.exports import export_video
from savos_job.prelabel import main as job

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016-train"


def make_corpus(root: Path, data: Path, sequences: list[str]) -> Path:
    """A corpus of links to ``data``'s frames, with each sequence's first mask."""
    write_first_frame_copy(root, load_sequences(data, sequences))
    return root


def ground_truth(data: Path, name: str) -> np.ndarray:
    """(T, H, W) bool: the sequence's object on every frame."""
    files = sorted((data / "Annotations" / "480p" / name).glob("*.png"))
    return np.stack([np.asarray(Image.open(f).convert("L")) > 0 for f in files])  # some frames have no object


def summary(output: Path) -> dict[str, object]:
    (path,) = (output / "_runs").glob("*.json")
    return dict(json.loads(path.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", required=True, help="the train-split sequence a person corrects")
    parser.add_argument(
        "--k",
        default="auto",
        help="the corrected frame (default auto: v1's worst frame in the middle half, the object in full view)",
    )
    parser.add_argument("--others", nargs="*", default=[], help="more sequences in the corpus, not corrected")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--backward", action="store_true", help="both versions with --backward")
    parser.add_argument("--quality", default="fast", help="both versions with this preset (default fast)")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args()
    name = args.sequence
    work = Path(tempfile.mkdtemp(prefix="savos-loop-"))
    corpus = make_corpus(work / "corpus", args.data, [name, *args.others])
    truth = ground_truth(args.data, name)

    seconds = {}
    start = time.perf_counter()
    both_ways = ["--quality", args.quality] + (["--backward"] if args.backward else [])
    assert job(["--input", str(corpus), "--output", str(work / "v1"), *both_ways]) == 0
    seconds["v1"] = time.perf_counter() - start
    v1 = read_video_masks(str(work / "v1"), name)
    if args.k == "auto":  # where a person reviewing v1 would look first: its worst frame, away from the ends,
        # among those where the object is in full view (a sliver at the frame's edge is not worth a fix)
        quarter, area = len(truth) // 4, truth.sum(axis=(1, 2))
        frames = [t for t in range(quarter, len(truth) - quarter) if area[t] >= 0.25 * np.median(area)]
        k = min(frames, key=lambda t: region_similarity(v1.ids[t] == 1, truth[t]))
    else:
        k = int(args.k)

    # The person's fix: object 1 on frame k is the ground truth; exported from "CVAT" with it, imported back.
    fixed = v1.ids.copy()
    fixed[k] = truth[k].astype(np.uint8)
    xml = export_video(dataclasses.replace(v1, ids=fixed), "cvat", work / "fixed", names={1: "object"})
    importing = ["import-corrections", str(work / "v1"), "--video-id", name, "--format", "cvat", "--file", str(xml)]
    assert savos([*importing, "--into", str(work / "corrections"), "--label", "1=object"]) == 0

    start = time.perf_counter()
    rerun = ["--input", str(corpus), "--output", str(work / "v2"), "--corrections", str(work / "corrections")]
    assert job([*rerun, "--carry-from", str(work / "v1"), *both_ways]) == 0
    seconds["v2"] = time.perf_counter() - start
    v2 = read_video_masks(str(work / "v2"), name)
    run = summary(work / "v2")

    def j_after(ids: np.ndarray) -> list[float]:
        return [region_similarity(ids[t] == 1, truth[t]) for t in range(k + 1, len(truth))]

    def j_before(ids: np.ndarray) -> float:
        return float(np.mean([region_similarity(ids[t] == 1, truth[t]) for t in range(1, k)]))

    j1, j2 = j_after(v1.ids), j_after(v2.ids)
    result = {
        "sequence": name,
        "frames": len(truth),
        "k": k,
        "corpus": [name, *args.others],
        "videos_recomputed": run["videos_done"],
        "videos_carried": run["videos_carried"],
        "backward": args.backward,
        "quality": args.quality,
        "frames_before_k_equal_v1": bool(np.array_equal(v2.ids[:k], v1.ids[:k])),
        "j_frames_1_to_k_minus_1": {"v1": j_before(v1.ids), "v2": j_before(v2.ids)},
        "frame_k_equals_fix": bool(np.array_equal(v2.ids[k] == 1, truth[k])),
        "j_at_k": {
            "v1": region_similarity(v1.ids[k] == 1, truth[k]),
            "v2": region_similarity(v2.ids[k] == 1, truth[k]),
        },
        "j_after_k": {"v1": float(np.mean(j1)), "v2": float(np.mean(j2))},
        "j_last_frame": {"v1": j1[-1], "v2": j2[-1]},
        "frames_after_k_better_worse": [
            int(np.sum(np.array(j2) > np.array(j1))),
            int(np.sum(np.array(j2) < np.array(j1))),
        ],
        "seconds": {key: round(value, 1) for key, value in seconds.items()},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    checks = [
        result["videos_recomputed"] == 1,
        result["videos_carried"] == len(args.others),
        result["frames_before_k_equal_v1"] or args.backward,
        np.array_equal(v2.ids[0], v1.ids[0]),
        result["frame_k_equals_fix"],
        result["j_after_k"]["v2"] >= result["j_after_k"]["v1"],
    ]
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
