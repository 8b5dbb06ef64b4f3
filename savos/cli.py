"""The ``savos`` command line: thin subcommands over the library."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("savos")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, help="SAVOS checkpoint (default: the project's default)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="savos", description="SAVOS video object segmentation")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    segment = commands.add_parser("segment", help="propagate first-frame (or sparse) masks through a video")
    segment.add_argument("input", type=Path, help="a folder of frames or a video file")
    masks = segment.add_mutually_exclusive_group(required=True)
    masks.add_argument("--mask", type=Path, help="the first frame's mask (palette, grey ids or 0/255)")
    masks.add_argument("--masks-dir", type=Path, help="masks named after the frames they annotate")
    segment.add_argument("--out", type=Path, required=True, help="output folder for one palette PNG per frame")
    segment.add_argument("--scales", type=float, nargs="+", default=[1.0], help="e.g. 0.5 0.75 1.0 (paper)")
    segment.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="bf16", help="autocast on CUDA")
    _add_model_options(segment)
    segment.set_defaults(run=_run_segment)

    info = commands.add_parser("info", help="parameter counts of a SAVOS model, per part")
    info.add_argument("--backbone", default="resnet50", help="resnet50 or efficientnet_lite0")
    info.add_argument("--checkpoint", type=Path, help="describe this checkpoint instead")
    info.set_defaults(run=_run_info)
    return parser


def _run_segment(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint, load_default_model
    from .data import open_frames
    from .data.annotations import first_frame_annotation, sparse_annotations
    from .inference import Predictor
    from .segment import segment_to_pngs

    frames = open_frames(args.input)
    if args.mask is not None:
        annotations = first_frame_annotation(args.mask, frames)
    else:
        annotations = sparse_annotations(args.masks_dir, frames)
    model, meta = load_checkpoint(args.checkpoint) if args.checkpoint else load_default_model()
    predictor = Predictor(model, device=args.device, scales=args.scales, precision=args.precision)
    written = segment_to_pngs(predictor, frames, annotations, args.out)
    logger.info(
        "wrote %d masks to %s (model %s, device %s)",
        written,
        args.out,
        meta.get("checkpoint_id"),
        predictor.device,
    )
    return 0


def _run_info(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .model import ModelConfig, build_savos

    if args.checkpoint:
        model, meta = load_checkpoint(args.checkpoint)
        print(f"checkpoint {args.checkpoint}: {meta}")
    else:
        model = build_savos(ModelConfig(backbone=args.backbone), backbone_weights="none")
    print(f"SAVOS {model.config}")
    total = 0
    for name, part in model.named_children():
        count = sum(p.numel() for p in part.parameters())
        total += count
        print(f"  {name:<8} {count:>12,}")
    print(f"  {'total':<8} {total:>12,}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .data import InputError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.run(args))
    except (InputError, CheckpointError) as err:
        print(f"savos {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
