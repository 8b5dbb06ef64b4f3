"""What a person's fix at frame k does to the frames after it with `best`, and how much of it is the adaptation.

Three runs of one DAVIS-2016 train sequence through the Python API (no job), object 1 from its first-frame mask:
v1, frame 0 annotated; v2, the ground truth of frame k added as the fix, which online adaptation also trains on;
and v2 with the fix left out of the adaptation (the engine's second fine-tuning patched out), so the fix only
resets the object at k. Prints J against the ground truth on frames k+1.. for each, as one JSON line:

    python benchmarks/fix_adaptation.py mallard-fly 44 >> out.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from savos.data.frames import FrameFolder
from savos.eval.metrics import region_similarity
from savos.inference import Predictor

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016-train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sequence")
    parser.add_argument("k", type=int, help="the fixed frame")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    name, k = args.sequence, args.k
    frames = FrameFolder(args.data / "JPEGImages" / "480p" / name)
    files = sorted((args.data / "Annotations" / "480p" / name).glob("*.png"))
    truth = np.stack([np.asarray(Image.open(f).convert("L")) > 0 for f in files])
    predictor = Predictor.from_pretrained(None, quality="best")
    adapt = predictor._adapt

    def first_only(state, image, prompts):  # type: ignore[no-untyped-def]
        return adapt(state, image, prompts) if state.decoder is None else state.decoder

    def j_after_k(fix: bool, adapt_on_fix: bool) -> float:
        predictor._adapt = adapt if adapt_on_fix else first_only  # type: ignore[method-assign]
        state = predictor.init_state(frames)
        predictor.add_mask(state, 0, 1, truth[0])
        if fix:
            predictor.add_mask(state, k, 1, truth[k])
        masks = [probs[0].float().cpu().numpy() > 0.5 for _, _, probs in predictor.propagate(state)]
        return float(np.mean([region_similarity(masks[t], truth[t]) for t in range(k + 1, len(truth))]))

    result = {
        "sequence": name,
        "k": k,
        "v1": j_after_k(fix=False, adapt_on_fix=False),
        "v2_adapt_0_and_k": j_after_k(fix=True, adapt_on_fix=True),
        "v2_adapt_0_only": j_after_k(fix=True, adapt_on_fix=False),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
