"""The ``savos`` command line: thin subcommands over the library."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .calibration import CALIBRATION_KEY
from .precision import PRECISION_CHOICES, PRECISION_HELP
from .quality import DEFAULT_QUALITY, OVERRIDE_OPTIONS, PRESETS

if TYPE_CHECKING:
    from .inference import Predictor
    from .model import SAVOS

logger = logging.getLogger("savos")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, help="SAVOS checkpoint (default: the project's default)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")


def _add_quality_options(parser: argparse.ArgumentParser) -> None:
    """``--quality`` and the options it sets, each of which overrides the preset's when given."""
    parser.add_argument(
        "--quality",
        choices=list(PRESETS),
        default=DEFAULT_QUALITY,
        help=f"test-time preset (MODEL_CARD.md has each one's dev score and cost; default: {DEFAULT_QUALITY})",
    )
    parser.add_argument("--scales", type=float, nargs="+", help="network scales, e.g. 0.5 0.75 1.0 (paper)")
    parser.add_argument(
        "--flip", action=argparse.BooleanOptionalAction, help="also run each frame mirrored and average"
    )
    parser.add_argument(
        "--online-steps",
        type=_non_negative_int,
        help="fine-tune a per-video decoder on the annotated frame for this many steps first (0: off)",
    )
    parser.add_argument("--online-lr", type=float, help="learning rate of that fine-tuning (default: the preset's)")
    parser.add_argument(
        "--search-radius",
        type=_non_negative_float,
        help="keep each object within this fraction of the frame's shorter side of its previous mask (0: anywhere)",
    )
    parser.add_argument(
        "--short-side",
        type=_non_negative_int,
        help="frames with a longer shorter side go through the network scaled down to it (default: the preset's, "
        "480, the size the model was trained at; 0: each frame at its own size)",
    )


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number, 0 or more, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


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
    segment.add_argument(
        "--backward",
        action="store_true",
        help="also propagate backwards from masks after frame 0: an object gets masks before its first one, and a "
        "later mask of an object updates the frames since its previous one",
    )
    _add_quality_options(segment)
    segment.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    _add_model_options(segment)
    segment.set_defaults(run=_run_segment)

    predict = commands.add_parser("predict", help="segment each sequence of a dataset root from its first mask")
    predict.add_argument("--data", type=Path, required=True, help="DAVIS / YouTube-VOS root")
    predict.add_argument("--out", type=Path, required=True, help="output root: <seq>/<frame>.png")
    predict.add_argument("--sequences", help="comma-separated sequence names (default: all)")
    predict.add_argument("--baseline", choices=["copy", "flow"], help="a baseline instead of the model")
    _add_quality_options(predict)
    predict.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    _add_model_options(predict)
    predict.set_defaults(run=_run_predict)

    calibrate = commands.add_parser(
        "calibrate", help="fit the score -> J estimate on sequences with ground truth and store it in a checkpoint"
    )
    calibrate.add_argument("--data", type=Path, action="append", default=[], help="DAVIS root (repeatable)")
    calibrate.add_argument(
        "--sequences",
        action="append",
        help="comma-separated sequence names of each --data, in order (default, or 'all': every sequence)",
    )
    calibrate.add_argument(
        "--quality", choices=list(PRESETS), default=DEFAULT_QUALITY, help="the preset to calibrate (scores differ)"
    )
    calibrate.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    calibrate.add_argument(
        "--method", choices=["linear", "isotonic"], default="linear", help="the map's form (default: linear)"
    )
    calibrate.add_argument("--pairs", type=Path, help="(score, J) pairs saved by an earlier --json: no predictions")
    calibrate.add_argument("--out", type=Path, required=True, help="the checkpoint written with the calibration")
    calibrate.add_argument("--json", type=Path, help="write the pairs' cross-validated measures here")
    _add_model_options(calibrate)
    calibrate.set_defaults(run=_run_calibrate)

    composite = commands.add_parser("composite", help="write multi-object sequences pasted from single-object ones")
    composite.add_argument("--data", type=Path, required=True, help="DAVIS / YouTube-VOS root")
    composite.add_argument("--pairs", required=True, help="base+donor pairs, comma-separated: bear+swing,...")
    composite.add_argument("--out", type=Path, required=True, help="a new DAVIS root")
    composite.add_argument("--seed", type=int, default=0, help="seeds where each donor is placed")
    composite.set_defaults(run=_run_composite)

    evaluate = commands.add_parser("eval", help="DAVIS J and F of predicted masks against ground truth")
    evaluate.add_argument("--gt", type=Path, required=True, help="DAVIS root or folder of per-sequence masks")
    evaluate.add_argument("--pred", type=Path, required=True, help="folder of <seq>/<frame>.png predictions")
    evaluate.add_argument("--sequences", help="comma-separated sequence names (default: every GT sequence)")
    evaluate.add_argument("--json", type=Path, help="also write the table and summary as JSON here")
    evaluate.add_argument("--processes", type=int, help="worker processes (default: one per CPU)")
    evaluate.set_defaults(run=_run_eval)

    _add_train_parser(commands)

    export = commands.add_parser("export-model", help="re-save a checkpoint for shipping (fp16, a new id)")
    export.add_argument(
        "checkpoint", type=Path, nargs="+", help="a SAVOS checkpoint, e.g. a run's model.pt; several: their average"
    )
    export.add_argument("--weights", type=float, nargs="+", help="averaging weights (default: equal)")
    export.add_argument("--out", type=Path, required=True, help="where to write it")
    export.add_argument("--id", required=True, help="the checkpoint id that outputs will name")
    export.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    export.set_defaults(run=_run_export_model)

    exports = commands.add_parser("export", help="one labelled video from the job's output in another format")
    exports.add_argument("output", help="the job's output URI (folder, s3://, gs://)")
    exports.add_argument("--video-id", action="append", required=True, help="a video to export (repeat for more)")
    exports.add_argument(
        "--format",
        choices=["davis", "sav", "ytvis", "cvat", "cvat-images", "labelstudio"],
        required=True,
        help="what to write: dataset formats, or CVAT XML (video tracks / per-frame images) and Label Studio tasks",
    )
    exports.add_argument("--dest", type=Path, required=True, help="folder to write into")
    exports.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="ID=NAME",
        help="CVAT / Label Studio: the label of an object id (repeat; default 'object <id>')",
    )
    exports.add_argument(
        "--image-url",
        default="{video_id}/{frame}.jpg",
        help="Label Studio: where each frame's image is, with {video_id} and {frame} (default: %(default)s)",
    )
    exports.set_defaults(run=_run_export)

    fixes = commands.add_parser(
        "import-corrections", help="a person's corrections from an annotation tool, kept as sparse annotations"
    )
    fixes.add_argument("output", help="the job's output the tool's pre-labels came from")
    fixes.add_argument("--video-id", required=True, help="the corrected video")
    fixes.add_argument(
        "--format", choices=["cvat", "cvat-images", "labelstudio", "davis"], required=True, help="the tool's export"
    )
    fixes.add_argument("--file", type=Path, required=True, help="the export (XML, JSON, or a folder of PNGs)")
    fixes.add_argument("--into", required=True, help="the corrections store (folder or s3:// prefix)")
    fixes.add_argument("--label", action="append", default=[], metavar="ID=NAME", help="as given to savos export")
    fixes.set_defaults(run=_run_import_corrections)

    preview = commands.add_parser("preview", help="draw one labelled video's masks over its frames")
    preview.add_argument("output", help="the job's output URI")
    preview.add_argument("--video-id", required=True, help="the video")
    preview.add_argument("--frames", type=Path, required=True, help="the video's frames folder or video file")
    preview.add_argument("--dest", type=Path, required=True, help=".png/.jpg contact sheet, or .mp4/.gif overlay")
    preview.add_argument("--every", type=int, default=5, help="contact sheet: every Nth frame (default: 5)")
    preview.set_defaults(run=_run_preview)

    report = commands.add_parser("report", help="a job output's totals, failures and lowest-scoring videos")
    report.add_argument("output", help="the job's output URI")
    report.add_argument("--lowest", type=int, default=10, help="list this many lowest-scoring videos")
    report.add_argument("--html", type=Path, help="also write an HTML page with the contact sheets here")
    report.set_defaults(run=_run_report)

    compact = commands.add_parser(
        "compact", help="merge a job output's per-video files into large ones with an index (safe to rerun)"
    )
    compact.add_argument("output", help="the job's output URI")
    compact.add_argument("--file-rows", type=int, help="rows per compacted file (default: one million)")
    compact.set_defaults(run=_run_compact)

    _add_bench(commands)

    info = commands.add_parser("info", help="parameter counts of a SAVOS model, per part")
    info.add_argument("--backbone", default="resnet50", help="resnet50, efficientnet_lite0 or efficientnet_lite2")
    info.add_argument("--checkpoint", type=Path, help="describe this checkpoint instead")
    info.set_defaults(run=_run_info)
    return parser


def _load_predictor(args: argparse.Namespace) -> tuple[Predictor, dict[str, Any]]:
    """The model of ``--checkpoint`` (or the default) behind a predictor with the command's options."""
    from .checkpoint import load_checkpoint, load_default_model
    from .inference import Predictor
    from .quality import chosen_quality

    model, meta = load_checkpoint(args.checkpoint) if args.checkpoint else load_default_model()
    predictor = Predictor(model, device=args.device, precision=args.precision, quality=chosen_quality(args))
    return predictor, meta


def _progress(total: int | None, what: str) -> Any:
    """A progress bar of frames on stderr; none where stderr is no terminal (logs, CI)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=what, disable=None, dynamic_ncols=True)


def _run_segment(args: argparse.Namespace) -> int:
    from .data import open_frames
    from .data.annotations import first_frame_annotation, sparse_annotations
    from .segment import segment_to_pngs

    frames = open_frames(args.input)
    if args.mask is not None:
        annotations = first_frame_annotation(args.mask, frames)
    else:
        annotations = sparse_annotations(args.masks_dir, frames)
    predictor, meta = _load_predictor(args)
    with _progress(len(frames) if isinstance(frames, Sized) else None, "segment") as bar:
        written = segment_to_pngs(predictor, frames, annotations, args.out, bar.update, args.backward)
    logger.info(
        "wrote %d masks to %s (model %s, device %s)",
        written,
        args.out,
        meta.get("checkpoint_id"),
        predictor.device,
    )
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from .data.vos import load_sequences
    from .segment import baseline_sequences, segment_sequences

    names = [name for name in args.sequences.split(",") if name] if args.sequences else None
    sequences = load_sequences(args.data, names)
    if args.baseline:
        written = baseline_sequences(args.baseline, sequences, args.out)
        source = f"baseline {args.baseline}"
    else:
        predictor, meta = _load_predictor(args)
        with _progress(sum(len(seq.frames) for seq in sequences), "predict") as bar:
            written = segment_sequences(predictor, sequences, args.out, bar.update)
        source = f"model {meta.get('checkpoint_id')}"
    logger.info("wrote %d masks for %d sequences to %s (%s)", written, len(sequences), args.out, source)
    return 0


def _run_calibrate(args: argparse.Namespace) -> int:
    import json

    from .checkpoint import DEFAULT_CHECKPOINT, read_checkpoint, write_with_meta
    from .data.errors import InputError
    from .data.vos import load_sequences
    from .eval.calibrate import Pairs, collect_pairs, cross_validate, fit

    if args.pairs is not None:
        pairs = Pairs.from_dict(json.loads(args.pairs.read_text())["pairs"])
        meta = read_checkpoint(args.checkpoint or DEFAULT_CHECKPOINT).get("meta", {})
    else:
        if not args.data:
            raise InputError("savos calibrate", "give --data (sequences with ground truth) or --pairs")
        chosen = args.sequences or []
        if len(chosen) > len(args.data):
            raise InputError(f"--sequences {chosen[len(args.data)]}", "more --sequences than --data")
        sequences = []
        for index, root in enumerate(args.data):
            names = chosen[index] if index < len(chosen) else "all"
            sequences += load_sequences(root, None if names == "all" else [n for n in names.split(",") if n])
        for name in OVERRIDE_OPTIONS:
            setattr(args, name, None)  # the preset as it is
        predictor, meta = _load_predictor(args)
        with _progress(sum(len(seq.frames) for seq in sequences), "calibrate") as bar:
            pairs = collect_pairs(predictor, sequences, bar.update)
    videos = sorted(set(pairs.video))
    fitted_on = f"{len(pairs.score)} object-frames of {len(videos)} sequences: {','.join(videos)}"
    calibration = fit(pairs, args.method, fitted_on)
    checked = cross_validate(pairs, args.method)
    stored = {**(meta.get(CALIBRATION_KEY) or {}), args.quality: calibration.to_dict()}  # other presets' kept
    write_with_meta(args.checkpoint or DEFAULT_CHECKPOINT, args.out, {CALIBRATION_KEY: stored})
    for level in ("objects", "videos"):
        m = checked[level]
        print(
            f"{level:<8} n={m['count']:<3} Spearman with J: estimate {m['spearman_estimate']:.3f} (one map "
            f"{m['spearman_estimate_one_map']:.3f}), score {m['spearman_score']:.3f}; mean |error|: estimate "
            f"{m['mean_abs_error_estimate']:.3f}, score {m['mean_abs_error_score']:.3f}"
        )
    if args.json:
        report = {"checkpoint": meta.get("checkpoint_id"), "quality": args.quality, "method": args.method, **checked}
        report |= {"calibration": calibration.to_dict(), "pairs": pairs.to_dict()}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    logger.info("wrote %s with the %s calibration (%d breakpoints)", args.out, args.quality, len(calibration.j))
    return 0


def _run_composite(args: argparse.Namespace) -> int:
    import numpy as np

    from .data.composite import write_composite_sequence
    from .data.vos import load_sequences

    rng = np.random.default_rng(args.seed)
    for pair in args.pairs.split(","):
        base, sep, donor = pair.partition("+")
        if not sep or not base or not donor:
            raise SystemExit(f"savos composite: error: --pairs wants base+donor items, got {pair!r}")
        base_seq, donor_seq = load_sequences(args.data, [base, donor])
        logger.info("wrote %s", write_composite_sequence(base_seq, donor_seq, args.out, rng))
    return 0


def _add_train_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .train.config import TrainConfig

    d = TrainConfig()
    train = commands.add_parser("train", help="train a SAVOS model on a DAVIS / YouTube-VOS root")
    train.add_argument("--data", type=Path, required=True, help="dataset root (JPEGImages/, Annotations/)")
    train.add_argument("--out", type=Path, required=True, help="run folder (resumed when it holds a run)")
    train.add_argument("--backbone", default=d.model.backbone, help="efficientnet_lite0, _lite2 or resnet50")
    train.add_argument("--decoder-channels", type=int, default=d.model.decoder_channels)
    train.add_argument("--dev", default=",".join(d.dev_sequences), help="held-out sequences, comma-separated")
    train.add_argument("--steps", type=int, default=d.steps)
    train.add_argument("--batch-size", type=int, default=d.batch_size)
    train.add_argument("--crop", type=int, nargs=2, default=list(d.crop), metavar=("H", "W"))
    train.add_argument("--clip-length", type=int, default=d.clip_length, help="target frames per clip")
    train.add_argument("--mix", default=",".join(f"{k}={v}" for k, v in d.mix), help="clip sources and weights")
    train.add_argument("--optimizer", choices=["adamw", "sgd"], default=d.optimizer)
    train.add_argument("--lr", type=float, default=d.lr)
    train.add_argument("--seed", type=int, default=d.seed)
    train.add_argument("--workers", type=int, default=2, help="data loader processes")
    train.add_argument("--checkpoint-every", type=int, default=500)
    train.add_argument("--log-every", type=int, default=10)
    train.add_argument("--stop-after", type=int, help="stop (with a checkpoint) after this step; resumable")
    train.add_argument("--no-validate", action="store_true", help="skip the dev evaluation at the end")
    train.add_argument("--backbone-weights", default="imagenet", help="imagenet, none, or a state-dict file")
    train.add_argument("--init", type=Path, help="start from this SAVOS checkpoint (e.g. a pretraining stage)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    train.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .model import ModelConfig
    from .train import RunOptions, TrainConfig, train

    try:
        mix = tuple((name, float(weight)) for name, weight in (item.split("=") for item in args.mix.split(",")))
    except ValueError as err:
        raise SystemExit(f"savos train: error: --mix must look like video=0.5,lucid=0.5 ({err})") from err
    config = TrainConfig(
        model=ModelConfig(backbone=args.backbone, decoder_channels=args.decoder_channels),
        dev_sequences=tuple(name for name in args.dev.split(",") if name),
        steps=args.steps,
        batch_size=args.batch_size,
        crop=tuple(args.crop),
        clip_length=args.clip_length,
        mix=mix,
        optimizer=args.optimizer,
        lr=args.lr,
        seed=args.seed,
    )
    options = RunOptions(
        data_root=args.data,
        out_dir=args.out,
        device=args.device,
        workers=args.workers,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        validate_at_end=not args.no_validate,
        backbone_weights=args.backbone_weights,
        stop_after=args.stop_after,
        init_checkpoint=args.init,
    )
    logger.info("wrote %s", train(config, options))
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from .eval.folders import evaluate_folders
    from .eval.report import format_table, write_json

    sequences = [name for name in args.sequences.split(",") if name] if args.sequences else None
    results = evaluate_folders(args.gt, args.pred, sequences, args.processes)
    print(format_table(results))
    for result in results:
        if result.missing_frames:
            logger.warning(
                "%s: %d predicted frames missing (scored as empty): %s",
                result.name,
                len(result.missing_frames),
                ", ".join(result.missing_frames[:10]) + (" ..." if len(result.missing_frames) > 10 else ""),
            )
    if args.json:
        write_json(args.json, results)
        logger.info("wrote %s", args.json)
    return 0


def _run_export_model(args: argparse.Namespace) -> int:
    from .checkpoint import average_checkpoints, load_checkpoint, save_checkpoint

    if len(args.checkpoint) > 1:
        model, meta = average_checkpoints(args.checkpoint, args.weights)
    else:
        model, meta = load_checkpoint(args.checkpoint[0])
        meta["exported_from"] = str(args.checkpoint[0])
    meta = {**meta, "checkpoint_id": args.id}
    save_checkpoint(args.out, model, meta=meta, half=not args.fp32)
    logger.info("wrote %s (%.1f MB)", args.out, args.out.stat().st_size / 1e6)
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from .io import read_video_masks
    from .io.exports import export_video, object_labels, write_labelstudio_config

    names = _label_names(args)
    used: list[str] = []
    for video_id in args.video_id:
        video = read_video_masks(args.output, video_id)
        written = export_video(video, args.format, args.dest, names=names, image_url=args.image_url)
        used += object_labels(video.obj_ids, names).values()
        logger.info("%s: wrote %s", video_id, written)
    if args.format == "labelstudio":
        logger.info("the labelling config: %s", write_labelstudio_config(args.dest, used))
    return 0


def _label_names(args: argparse.Namespace) -> dict[int, str]:
    names = {}
    for pair in args.label:
        obj_id, sep, name = pair.partition("=")
        if not sep or not obj_id.strip().isdigit() or not name.strip():
            raise SystemExit(f"savos {args.command}: error: --label {pair!r}: expected ID=NAME, for example 1=rider")
        names[int(obj_id)] = name.strip()
    return names


def _run_import_corrections(args: argparse.Namespace) -> int:
    from .io import read_video_masks
    from .io.corrections import CorrectionStore, find_corrections, read_tool_masks

    video = read_video_masks(args.output, args.video_id)
    ids = read_tool_masks(args.file, args.format, video, _label_names(args))
    corrections = find_corrections(video, ids, args.file)
    if not corrections:
        print(f"{args.video_id}: no mask differs from the pre-labels; nothing to import")
        return 0
    store = CorrectionStore(args.into)
    written = store.add(args.video_id, corrections)
    for obj_id in sorted({c.obj_id for c in corrections}):
        for removal, what in ((False, "corrected"), (True, "removed")):
            frames = [c.frame_name for c in corrections if c.obj_id == obj_id and c.removal == removal]
            if frames:
                print(f"{args.video_id}: object {obj_id} {what} on frame(s) {', '.join(frames)}")
    print(f"{len(written)} file(s) under {store.folder(args.video_id)}")
    return 0


def _run_preview(args: argparse.Namespace) -> int:
    from .data import open_frames
    from .io import read_video_masks
    from .io.preview import write_preview

    video = read_video_masks(args.output, args.video_id)
    frames = list(open_frames(args.frames))
    if len(frames) != len(video.ids) or frames[0].shape[:2] != video.ids.shape[1:]:
        from .data.errors import InputError

        raise InputError(
            str(args.frames),
            f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, but video {args.video_id} has "
            f"{len(video.ids)} masks of {video.ids.shape[2]}x{video.ids.shape[1]}",
        )
    write_preview(frames, list(video.ids), video.frame_names, args.dest, every=args.every)
    logger.info("wrote %s", args.dest)
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from .io.report import format_report, load_report, write_html

    report = load_report(args.output)
    print(format_report(report, lowest=args.lowest))
    if args.html:
        args.html.write_text(write_html(report, lowest=max(args.lowest, 20)))
        logger.info("wrote %s", args.html)
    return 0


def _run_compact(args: argparse.Namespace) -> int:
    from .io.compaction import TARGET_FILE_ROWS, compact

    result = compact(args.output, target_rows=args.file_rows or TARGET_FILE_ROWS)
    print(
        f"compacted {result.videos_compacted} videos into {result.files_written} files "
        f"({result.videos_indexed} videos in the index, generation {result.generation}); "
        f"{result.per_video_files_removed} per-video files removed"
    )
    return 0


def _add_bench(commands: Any) -> None:
    """``savos bench KIND``: one subcommand per measurement, each with its own options."""
    bench = commands.add_parser("bench", help="speed, measured as ratios within one run (savos bench KIND --help)")
    kinds = bench.add_subparsers(dest="bench_kind", required=True, metavar="KIND")

    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--backbone", help="random-weight model of this backbone instead of the default checkpoint")
    model.add_argument("--json", type=Path, help="write every figure with its unit and configuration here")
    clips = argparse.ArgumentParser(add_help=False)
    clips.add_argument("--objects", type=int, nargs="+", default=[1, 4], help="object counts (default: 1 4)")
    clips.add_argument("--frames", type=int, default=8, help="frames per clip (default: 8)")
    clips.add_argument("--size", type=int, nargs=2, default=[480, 854], metavar=("H", "W"), help="default 480 854")
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", default="auto", help="auto, cpu, cuda (default: auto)")
    precision = argparse.ArgumentParser(add_help=False)
    precision.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    graphs = argparse.ArgumentParser(add_help=False)
    graphs.add_argument("--no-cuda-graphs", action="store_true", help="eager network steps on CUDA")

    engine = kinds.add_parser(
        "engine", parents=[model, clips, precision], help="the engine against the naive reference path (CPU)"
    )
    engine.add_argument("--repeats", type=int, default=1, help="best of this many runs per path (default: 1)")
    engine.set_defaults(run=_run_bench, measure=_bench_engine)

    lockstep = kinds.add_parser(
        "lockstep", parents=[model, clips, device, precision, graphs], help="K videos in lock-step, for each K"
    )
    lockstep.add_argument("k", type=int, nargs="+", metavar="K", help="videos advanced together")
    lockstep.add_argument(
        "--compile", action="store_true", help="torch.compile the target step (on CUDA one per batch bucket)"
    )
    lockstep.add_argument("--no-channels-last", action="store_true", help="NCHW even for resnet50")
    lockstep.add_argument("--no-pin-memory", action="store_true", help="pageable frame uploads")
    lockstep.set_defaults(run=_run_bench, measure=_bench_lockstep)

    scaling = kinds.add_parser(
        "scaling", parents=[model, device, precision, graphs], help="object-frames/s against objects and frame size"
    )
    scaling.add_argument("--frames", type=int, default=8, help="frames per clip (default: 8)")
    scaling.add_argument("--max-pixels", type=int, default=1920 * 1080, help="pixel budget per frame")
    scaling.add_argument("--plot", type=Path, help="also draw it as a PNG here (needs matplotlib)")
    scaling.set_defaults(run=_run_bench, measure=_bench_scaling)

    quality = kinds.add_parser(
        "quality", parents=[model, clips, device], help="seconds per frame and per adaptation, and FLOPs, per preset"
    )
    quality.add_argument("presets", nargs="+", choices=list(PRESETS), metavar="PRESET", help=", ".join(PRESETS))
    quality.add_argument("--adapt-steps", type=int, default=3, help="adaptation steps timed, scaled to the preset's")
    quality.set_defaults(run=_run_bench, measure=_bench_quality)

    decode = kinds.add_parser("decode", help="JPEG decoding frames/s, CPU against GPU")
    decode.add_argument("--size", type=int, nargs=2, default=[480, 854], metavar=("H", "W"), help="default 480 854")
    decode.add_argument("--json", type=Path, help="write the figures here")
    decode.set_defaults(run=_run_bench_decode)

    compaction = kinds.add_parser("compaction", help="a job output of many small files before and after compaction")
    compaction.add_argument("--videos", type=int, default=10_000, help="per-video files (default: 10000)")
    compaction.add_argument("--frames", type=int, default=8, help="frames per video (default: 8)")
    compaction.add_argument("--size", type=int, nargs=2, default=[480, 854], metavar=("H", "W"), help="480 854")
    compaction.add_argument("--repeats", type=int, default=3, help="best of this many runs per query (default: 3)")
    compaction.add_argument("--json", type=Path, help="write the figures here")
    compaction.set_defaults(run=_run_bench_compaction)

    cost = kinds.add_parser("cost", help="dollars and hours per corpus, from a lockstep bench JSON and list prices")
    cost.add_argument("lockstep_json", type=Path, help="a savos bench lockstep --json file measured on a GPU")
    cost.add_argument("--prices", type=Path, help="a JSON replacing any of the prices (savos.bench.cost.PRICES)")
    cost.add_argument("--json", type=Path, help="write the table's figures here")
    cost.set_defaults(run=_run_bench_cost)


def _run_bench(args: argparse.Namespace) -> int:
    from .bench import machine, write_json
    from .checkpoint import load_default_model
    from .model import ModelConfig, build_savos

    if args.backbone:
        model = build_savos(ModelConfig(backbone=args.backbone), backbone_weights="none").eval()
    else:
        model, _ = load_default_model()
    results = args.measure(model, args)
    results["config"]["model"] = args.backbone or "default checkpoint"
    results.setdefault("machine", machine())
    if args.json:
        write_json(args.json, results)
        logger.info("wrote %s", args.json)
    unequal = [r["objects"] for r in results.get("rows", []) if not r.get("equal_within_tolerance", True)]
    if unequal:
        logger.error("engine and naive path differ beyond tolerance for %s objects", unequal)
        return 1
    return 0


def _bench_engine(model: SAVOS, args: argparse.Namespace) -> dict[str, Any]:
    from .bench import bench_engine, format_results

    results = bench_engine(model, args.objects, args.frames, args.size[0], args.size[1], args.repeats, args.precision)
    print(format_results(results))
    return results


def _run_bench_compaction(args: argparse.Namespace) -> int:
    from .bench import machine
    from .bench.compaction import bench_compaction, format_compaction

    results = bench_compaction(args.videos, args.frames, args.size[0], args.size[1], args.repeats)
    _print_and_save(format_compaction(results), {**results, "machine": machine()}, args.json)
    return 0


def _run_bench_cost(args: argparse.Namespace) -> int:
    import json

    from .bench.cost import cost_table, format_cost, load_prices

    table = cost_table(json.loads(args.lockstep_json.read_text()), load_prices(args.prices))
    _print_and_save(format_cost(table), table, args.json)
    return 0


def _run_bench_decode(args: argparse.Namespace) -> int:
    from .bench import machine
    from .bench.decode import bench_decode

    figures = bench_decode(args.size[0], args.size[1])
    text = f"JPEG decode, frames/s: { {k: round(v) for k, v in figures.items() if k.endswith('_s')} }"
    _print_and_save(text, {"decode": figures, "config": {"size": args.size}, "machine": machine()}, args.json)
    return 0


def _print_and_save(text: str, results: dict[str, Any], path: Path | None) -> None:
    """A bench's table on standard output, and its figures as JSON at ``path`` if given."""
    from .bench import write_json

    print(text)
    if path is not None:
        write_json(path, results)
        logger.info("wrote %s", path)


def _bench_quality(model: SAVOS, args: argparse.Namespace) -> dict[str, Any]:
    from .bench.quality import bench_quality, format_quality
    from .quality import quality_preset

    results = bench_quality(
        model,
        {name: quality_preset(name) for name in args.presets},
        objects=tuple(args.objects),
        frames=args.frames,
        size=(args.size[0], args.size[1]),
        adapt_steps=args.adapt_steps,
        device=args.device,
    )
    print(format_quality(results))
    results["config"] = {"device": args.device, "precision": "auto"}
    return results


def _bench_lockstep(model: SAVOS, args: argparse.Namespace) -> dict[str, Any]:
    from .bench.lockstep import format_lockstep, lockstep_report
    from .inference import EngineOptions, Predictor

    predictor = Predictor(
        model,
        device=args.device,
        precision=args.precision,
        options=EngineOptions(
            channels_last=False if args.no_channels_last else "auto",
            compile=args.compile,
            pin_memory=False if args.no_pin_memory else "auto",
            cuda_graphs=False if args.no_cuda_graphs else "auto",
        ),
    )
    results = lockstep_report(predictor, args.k, args.objects, args.frames, *args.size)
    results["config"]["model"] = args.backbone or "default checkpoint"
    print(format_lockstep(results))
    return results


def _bench_scaling(model: SAVOS, args: argparse.Namespace) -> dict[str, Any]:
    from .bench.scaling import format_scaling, plot_scaling, scaling_report
    from .inference import EngineOptions, Predictor

    predictor = Predictor(
        model,
        device=args.device,
        precision=args.precision,
        options=EngineOptions(max_pixels=args.max_pixels, cuda_graphs=False if args.no_cuda_graphs else "auto"),
    )
    results = scaling_report(predictor, frames=args.frames)
    results["config"]["model"] = args.backbone or "default checkpoint"
    print(format_scaling(results))
    if args.plot:
        where = _device_name(predictor.device)
        plot_scaling(results, args.plot, f"{results['config']['model']}, {where}, {results['config']['precision']}")
        logger.info("wrote %s", args.plot)
    return results


def _device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return f"{torch.cpu.get_capabilities().get('cpu_name', 'CPU')}, {torch.get_num_threads()} threads"


def _run_info(args: argparse.Namespace) -> int:
    from .checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, read_checkpoint
    from .model import ModelConfig, build_savos

    if args.checkpoint:
        model, meta = load_checkpoint(args.checkpoint)
        print("\n".join(describe_checkpoint(str(args.checkpoint), meta)))
    else:
        if DEFAULT_CHECKPOINT.is_file():
            default = read_checkpoint(DEFAULT_CHECKPOINT).get("meta", {})
            print("\n".join(describe_checkpoint(f"default ({DEFAULT_CHECKPOINT.name})", default)))
        model = build_savos(ModelConfig(backbone=args.backbone), backbone_weights="none")
    print(f"SAVOS {model.config}")
    total = 0
    for name, part in model.named_children():
        count = sum(p.numel() for p in part.parameters())
        total += count
        print(f"  {name:<8} {count:>12,}")
    print(f"  {'total':<8} {total:>12,}")
    return 0


# What `pip install 'savos[job]'` adds (pyproject.toml): the batch job and the job's Parquet outputs need them.
JOB_MODULES = frozenset({"pyarrow", "pycocotools", "fsspec", "s3fs", "gcsfs", "ray", "yaml", "pydantic"})

# Checkpoint metadata shown first, in this order; the rest follows as it is.
_DESCRIBED = ("checkpoint_id", "licence", "licence_reason", "training_data", "backbone_weights", "model_card")


def describe_checkpoint(name: str, meta: dict[str, object]) -> list[str]:
    """Lines saying what a checkpoint is and under which terms its weights may be used."""
    lines = [f"checkpoint {name}"]
    lines += [f"  {key:<17} {meta[key]}" for key in _DESCRIBED if key in meta]
    if "licence" not in meta:
        lines.append(f"  {'licence':<17} not recorded: ask whoever trained it (its training data's terms apply)")
    for key, value in meta.items():
        if key == CALIBRATION_KEY and isinstance(value, dict):  # a map per preset: what and on what, not numbers
            value = "; ".join(
                f"{preset}: {len(c.get('j', []))} knots, {c.get('fitted_on', '')}" for preset, c in value.items()
            )
        if key not in _DESCRIBED:
            lines.append(f"  {key:<17} {value}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .data import InputError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from .inference.cpu import tune_process_for_cpu_inference

    tune_process_for_cpu_inference()
    try:
        return int(args.run(args))
    except (InputError, CheckpointError) as err:
        print(f"savos {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in JOB_MODULES:
            raise
        print(
            f"savos {args.command}: error: this command reads the batch job's output, and its dependencies are not "
            f"installed ({err.name} is missing): pip install 'savos[job]'",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
