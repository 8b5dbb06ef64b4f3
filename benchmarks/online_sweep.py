"""Online adaptation's settings on the dev split: J&F for each (steps, learning rate, batch) given.

Each setting labels the dev sequences with the default checkpoint (``savos predict --quality best`` with those
settings in place of the preset's) and scores them (``savos eval``). Results go to ``--json`` after each setting,
so a run cut short keeps what it measured. Made for a GPU, where a setting takes seconds; on a CPU each one takes
about 20 minutes. From the repository root:

    python benchmarks/online_sweep.py --data ../shared/data/davis2016-train --steps 30 60 --lr 1e-5 1e-4 \\
        --json sweep.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from savos.data.vos import load_sequences
from savos.eval.folders import evaluate_folders
from savos.eval.protocol import summarise
from savos.inference import Predictor
from savos.quality import Quality, quality_preset
from savos.segment import segment_sequences

DEV = ["bear", "dog-agility", "flamingo", "kite-walk", "swing"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a DAVIS root holding the sequences")
    parser.add_argument("--sequences", nargs="+", default=DEV)
    parser.add_argument("--steps", type=int, nargs="+", default=[30])
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-5])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[2])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()

    best = quality_preset("best")
    assert best.online is not None
    sequences = load_sequences(args.data, args.sequences)
    results = []
    for steps, lr, batch in itertools.product(args.steps, args.lr, args.batch_size):
        online = replace(best.online, steps=steps, lr=lr, batch_size=batch)
        predictor = Predictor.from_pretrained(None, device=args.device, quality=Quality(online=online))
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            segment_sequences(predictor, sequences, Path(out))
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            scored = evaluate_folders(args.data, out, args.sequences)
        summary = summarise(scored)
        row = {
            "steps": steps,
            "lr": lr,
            "batch_size": batch,
            "jf": round(summary["J&F-Mean"], 4),
            "j": round(summary["J-Mean"], 4),
            "f": round(summary["F-Mean"], 4),
            "per_sequence": {r.name: round(r.summary()["J&F-Mean"], 4) for r in scored},
            "seconds": round(seconds, 1),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
        machine = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
        args.json.write_text(json.dumps({"machine": machine, "torch": torch.__version__, "rows": results}, indent=2))


if __name__ == "__main__":
    main()
