"""The evaluation report: a per-sequence table, the DAVIS summary, and the same as JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .protocol import SequenceResult, summarise


def report_dict(results: Sequence[SequenceResult]) -> dict[str, Any]:
    """Summary and per-sequence statistics (with missing frames), ready for JSON."""
    return {
        "summary": summarise(results),
        "num_objects": sum(len(r.obj_ids) for r in results),
        "sequences": {
            r.name: {
                **r.summary(),
                "objects": {str(obj_id): stats for obj_id, stats in zip(r.obj_ids, r.object_stats(), strict=True)},
                "missing_frames": r.missing_frames,
            }
            for r in results
        },
    }


def format_table(results: Sequence[SequenceResult]) -> str:
    """A fixed-width table: one row per sequence, then the pooled summary."""
    header = f"{'sequence':<24} {'objects':>7} {'J&F':>7} {'J-Mean':>7} {'F-Mean':>7} {'missing':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        s = r.summary()
        lines.append(
            f"{r.name:<24} {len(r.obj_ids):>7} {s['J&F-Mean']:>7.3f} {s['J-Mean']:>7.3f} {s['F-Mean']:>7.3f} "
            f"{len(r.missing_frames):>7}"
        )
    total = summarise(results)
    lines.append("-" * len(header))
    lines.append(
        f"{'all (objects pooled)':<24} {sum(len(r.obj_ids) for r in results):>7} {total['J&F-Mean']:>7.3f} "
        f"{total['J-Mean']:>7.3f} {total['F-Mean']:>7.3f} {sum(len(r.missing_frames) for r in results):>7}"
    )
    lines.append(
        "J-Recall {J-Recall:.3f}  J-Decay {J-Decay:.3f}  F-Recall {F-Recall:.3f}  F-Decay {F-Decay:.3f}".format(**total)
    )
    return "\n".join(lines)


def write_json(path: str | os.PathLike[str], results: Sequence[SequenceResult]) -> None:
    """Write :func:`report_dict` (NaN, for sequences with nothing to score, becomes null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_nan_to_none(report_dict(results)), indent=2)
    path.write_text(text + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value
