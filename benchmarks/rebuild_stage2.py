"""Rebuild the stage-2 checkpoint from a soup of it and stage 1, to weigh the two again.

`savos-lite0-davis16-v2` was the equal average of stage 1 (v1) and stage 2, and stage 2 alone was not kept. Since
v2 = (v1 + stage2) / 2, stage 2 is 2 * v2 - v1, exact up to the fp16 rounding of both files (BatchNorm variances
are kept positive). `savos export-model v1.pt stage2.pt --weights ...` then makes any soup on that line:

    git show 14171a4:savos/checkpoints/default.pt > v1.pt      # stage 1, the default before v2
    git show 123b5e4:savos/checkpoints/default.pt > v2.pt      # the equal average
    python benchmarks/rebuild_stage2.py --v1 v1.pt --average v2.pt --out stage2.pt
"""

from __future__ import annotations

import argparse

from savos.checkpoint import load_checkpoint, save_checkpoint

_MIN_VARIANCE = 1e-5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v1", required=True, help="stage 1's checkpoint")
    parser.add_argument("--average", required=True, help="the equal average of stage 1 and stage 2")
    parser.add_argument("--out", required=True, help="where stage 2 goes (fp32)")
    args = parser.parse_args()
    average, meta = load_checkpoint(args.average)
    v1, _ = load_checkpoint(args.v1, expected_config=average.config)
    if meta.get("average_weights") != [0.5, 0.5]:
        raise SystemExit(f"{args.average}: not an equal average of two checkpoints ({meta.get('average_weights')})")
    first = v1.state_dict()
    state = {}
    for key, tensor in average.state_dict().items():
        if not tensor.is_floating_point():
            state[key] = tensor  # BatchNorm counters: the average took stage 2's
            continue
        rebuilt = 2 * tensor - first[key]
        state[key] = rebuilt.clamp_min(_MIN_VARIANCE) if key.endswith("running_var") else rebuilt
    average.load_state_dict(state)
    save_checkpoint(
        args.out,
        average,
        meta={"checkpoint_id": "savos-lite0-davis16-v2-stage2-rebuilt", "rebuilt_from": [args.v1, args.average]},
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
