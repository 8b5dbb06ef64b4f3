"""Checkpoints: the state dict with the model config inside, loaded safely (``weights_only=True``)."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from .files import write_atomically
from .model import SAVOS, ModelConfig, build_savos

logger = logging.getLogger(__name__)

FORMAT = "savos-checkpoint"
FORMAT_VERSION = 1
# The checkpoint shipped inside the package (MODEL_CARD.md: its data, recipe and licence).
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "default.pt"
DEFAULT_CHECKPOINT_ID = "savos-lite0-davis16-v3"  # the id in its metadata


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def save_checkpoint(
    path: str | os.PathLike[str],
    model: SAVOS,
    *,
    meta: dict[str, Any] | None = None,
    half: bool = False,
) -> None:
    """Write ``model`` with its config. ``half`` stores floating tensors as fp16 (half the size).

    The file is written under a temporary name and renamed, so a crash never leaves a truncated checkpoint.
    """
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in model.state_dict().items()
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": state,
        "meta": dict(meta or {}),
    }
    write_atomically(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw payload, checked for format. Never unpickles arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects other than tensors and plain data "
            f"(weights_only=True). Only load checkpoints you trust. Detail: {str(err).splitlines()[0]}"
        ) from err
    except Exception as err:  # torch's reader raises many types (EOFError, KeyError...) on a non-checkpoint
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a SAVOS checkpoint (no '{FORMAT}' format tag)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {payload.get('format_version')}, this code reads {FORMAT_VERSION}"
        )
    return payload


def write_with_meta(path: str | os.PathLike[str], out: str | os.PathLike[str], updates: dict[str, Any]) -> None:
    """Write the checkpoint ``path`` to ``out`` with its metadata updated by ``updates``: its tensors exactly as
    stored (fp16 stays fp16). ``out`` may be ``path`` itself (written under a temporary name, then renamed)."""
    payload = read_checkpoint(path)
    payload["meta"] = {**payload.get("meta", {}), **updates}
    write_atomically(out, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    expected_config: ModelConfig | None = None,
) -> tuple[SAVOS, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights (fp32). Returns ``(model, meta)``.

    Fails with :class:`CheckpointError` on a config that does not parse or differs from ``expected_config``,
    and on any missing or unexpected state-dict key.
    """
    payload = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: bad model config in checkpoint: {err}") from err
    if expected_config is not None and config != expected_config:
        diff = {k: (v, getattr(config, k)) for k, v in expected_config.to_dict().items() if getattr(config, k) != v}
        details = ", ".join(f"{k}: expected {a!r}, checkpoint has {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(f"{path}: model config mismatch ({details})")
    model = build_savos(config, backbone_weights="none")
    state = payload["state_dict"]
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: state dict does not match a {config.backbone} SAVOS: "
            f"missing keys {_abbrev(missing)}; unexpected keys {_abbrev(unexpected)}"
        )
    shapes = [k for k in own if own[k].shape != state[k].shape]
    if shapes:
        raise CheckpointError(f"{path}: tensors of the wrong shape: {_abbrev(shapes)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model, dict(payload.get("meta", {}))


def average_checkpoints(
    paths: list[str | os.PathLike[str]], weights: list[float] | None = None
) -> tuple[SAVOS, dict[str, Any]]:
    """The weighted average of checkpoints of one architecture (a "model soup": e.g. a model and its own
    fine-tuned copy, which keeps some of what fine-tuning made it forget). Weights default to equal and must
    sum to 1. Integer tensors (BatchNorm counters) come from the last checkpoint. Returns ``(model, meta)``."""
    weights = weights or [1 / len(paths)] * len(paths)
    if len(weights) != len(paths) or abs(sum(weights) - 1) > 1e-6 or min(weights) < 0:
        raise ValueError(f"need one non-negative weight per checkpoint, summing to 1; got {weights}")
    model, _ = load_checkpoint(paths[0])
    states = [model.state_dict()] + [
        load_checkpoint(p, expected_config=model.config)[0].state_dict() for p in paths[1:]
    ]
    averaged = {
        key: sum(w * state[key] for w, state in zip(weights, states, strict=True))
        if tensor.is_floating_point()
        else states[-1][key]
        for key, tensor in states[0].items()
    }
    model.load_state_dict(averaged)
    return model, {"averaged_from": [str(p) for p in paths], "average_weights": weights}


def load_default_model() -> tuple[SAVOS, dict[str, Any]]:
    """The project's default checkpoint, or, while none ships, an untrained model (said loudly)."""
    if DEFAULT_CHECKPOINT.is_file():
        return load_checkpoint(DEFAULT_CHECKPOINT)
    logger.warning(
        "NO TRAINED CHECKPOINT: the default model is an efficientnet_lite0 SAVOS with ImageNet backbone "
        "weights and an UNTRAINED decoder. Its masks are not meaningful; pass --checkpoint to use trained weights."
    )
    model = build_savos(ModelConfig(backbone="efficientnet_lite0"), backbone_weights="imagenet")
    return model, {"checkpoint_id": "untrained-efficientnet_lite0"}


def _abbrev(keys: list[str], limit: int = 8) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown
