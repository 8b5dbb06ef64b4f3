"""The training loop: deterministic data by step, checkpoints that resume exactly, dev J&F at the end.

Files in the run folder:
- ``train_state.pt``: model, optimiser, step and config; written every ``checkpoint_every`` steps (atomically).
- ``model.pt``: the model as a SAVOS checkpoint (see :mod:`savos.checkpoint`), with the training config in meta.
- ``metrics.jsonl``: one line per logged step and per validation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_checkpoint, save_checkpoint
from ..data.vos import load_sequences, split_sequences
from ..eval.protocol import summarise
from ..files import write_atomically
from ..inference.engine import resolve_device
from ..model import SAVOS, build_savos
from .clips import ClipSampler
from .config import TrainConfig
from .recurrent import ClipBatch, clip_loss, collate
from .validate import validate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """How a run executes (not what it computes): paths, device, workers, how often to save and log."""

    data_root: Path
    out_dir: Path
    device: str = "auto"
    workers: int = 2
    checkpoint_every: int = 500
    log_every: int = 10
    validate_at_end: bool = True
    backbone_weights: str = "imagenet"
    # Stop (after a checkpoint) once this many steps are done, e.g. to fit a time slot; resume later.
    stop_after: int | None = None
    # Start from these weights instead of ImageNet (a second stage: pretraining, then video fine-tuning).
    init_checkpoint: Path | None = None


class BatchesByStep(torch.utils.data.Dataset[ClipBatch]):
    """The batch of step ``k`` depends only on ``(seed, k)``, whichever worker builds it and whenever."""

    def __init__(self, sampler: ClipSampler, seed: int, batch_size: int, steps: int) -> None:
        self.sampler, self.seed, self.batch_size, self.steps = sampler, seed, batch_size, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> ClipBatch:
        rng = np.random.default_rng([self.seed, step])
        return collate([self.sampler.sample(rng) for _ in range(self.batch_size)])


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then polynomial decay (power 0.9) to zero at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    return config.lr * (1 - step / config.steps) ** 0.9


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep the backbone's ImageNet batch statistics: a few clips per batch are too few to estimate them."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def train(config: TrainConfig, options: RunOptions) -> Path:
    """Train (or resume) a run; returns the path of the final ``model.pt``."""
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(options.device)
    torch.manual_seed(config.seed)
    train_seqs, dev_seqs = split_sequences(load_sequences(options.data_root), config.dev_sequences)
    sampler = ClipSampler(
        train_seqs,
        size=config.crop,
        length=config.clip_length,
        max_skip=config.max_skip,
        mix=dict(config.mix),
    )
    if options.init_checkpoint is not None:
        model, _ = load_checkpoint(options.init_checkpoint, expected_config=config.model)
        model = model.to(device)
    else:
        model = build_savos(config.model, backbone_weights=options.backbone_weights).to(device)
    optimizer = build_optimizer(model, config)
    start = _resume(out / "train_state.pt", config, model, optimizer, device)
    logger.info(
        "training %s SAVOS on %d sequences (dev: %s), steps %d..%d, batch %d, device %s",
        config.model.backbone,
        len(train_seqs),
        ", ".join(s.name for s in dev_seqs),
        start,
        config.steps,
        config.batch_size,
        device,
    )
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(
            BatchesByStep(sampler, config.seed, config.batch_size, config.steps), range(start, config.steps)
        ),
        batch_size=None,
        num_workers=options.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    model.train()
    freeze_batchnorm(model)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    tick, seen, losses = time.perf_counter(), 0, []
    for step, batch in enumerate(loader, start=start):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        with autocast:
            loss = clip_loss(model, batch.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        seen += len(batch.objects)
        done = step + 1
        if done % options.log_every == 0 or done == config.steps:
            elapsed = time.perf_counter() - tick
            rate = seen / elapsed
            eta = (config.steps - done) * config.batch_size / rate if rate else math.nan
            record = {"step": done, "loss": float(np.mean(losses)), "lr": learning_rate(config, step)}
            logger.info(
                "step %d/%d  loss %.4f  lr %.2e  %.2f clips/s  eta %s",
                done,
                config.steps,
                record["loss"],
                record["lr"],
                rate,
                _duration(eta),
            )
            _append_metrics(out, {**record, "clips_per_s": rate})
            tick, seen, losses = time.perf_counter(), 0, []
        if done % options.checkpoint_every == 0 or done == config.steps or done == options.stop_after:
            _save(out, config, model, optimizer, done, options)
        if done == options.stop_after:
            logger.info("stopped after step %d as asked; run again with the same --out to resume", done)
            return out / "model.pt"
    if options.validate_at_end:
        results = validate(model, options.data_root, dev_seqs, out / "dev-predictions", device=options.device)
        summary = summarise(results)
        logger.info("dev J&F %.3f  J %.3f  F %.3f", summary["J&F-Mean"], summary["J-Mean"], summary["F-Mean"])
        _append_metrics(out, {"step": config.steps, "dev": summary})
    return out / "model.pt"


def _resume(
    path: Path, config: TrainConfig, model: SAVOS, optimizer: torch.optim.Optimizer, device: torch.device
) -> int:
    if not path.is_file():
        return 0
    state = torch.load(path, map_location=device, weights_only=True)
    if state["config"] != config.to_dict():
        raise ValueError(f"{path}: the run was started with a different training config; use a new --out")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    logger.info("resumed from %s at step %d", path, state["step"])
    return int(state["step"])


def _save(
    out: Path, config: TrainConfig, model: SAVOS, optimizer: torch.optim.Optimizer, step: int, options: RunOptions
) -> None:
    state = {"config": config.to_dict(), "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
    write_atomically(out / "train_state.pt", lambda tmp: torch.save(state, tmp))
    meta = {
        "checkpoint_id": f"{out.name}-step{step}",
        "train_config": config.to_dict(),
        "step": step,
        "data_root": str(options.data_root),
        "init_checkpoint": str(options.init_checkpoint) if options.init_checkpoint else None,
    }
    save_checkpoint(out / "model.pt", model, meta=meta)
    logger.info("saved %s at step %d", out / "model.pt", step)


def _append_metrics(out: Path, record: dict[str, Any]) -> None:
    with (out / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
