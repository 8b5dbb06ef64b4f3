"""Dev-split validation: segment each dev sequence from its first mask and score it with the DAVIS evaluator."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from pathlib import Path

from ..data.vos import Sequence, annotation_dir
from ..eval.folders import evaluate_folders
from ..eval.protocol import SequenceResult
from ..inference import Predictor
from ..model import SAVOS
from ..quality import Quality
from ..segment import segment_sequences


def validate(
    model: SAVOS,
    data_root: Path,
    sequences: Seq[Sequence],
    out_dir: Path,
    *,
    device: str = "auto",
    scales: tuple[float, ...] = (1.0,),
) -> list[SequenceResult]:
    """Dev results of ``model`` (put back in training mode by the caller if needed)."""
    was_training = model.training
    model.eval()
    try:
        segment_sequences(Predictor(model, device=device, quality=Quality(scales=scales)), sequences, out_dir)
    finally:
        model.train(was_training)
    return evaluate_folders(annotation_dir(data_root), out_dir, [s.name for s in sequences])
