"""The job's settings, from the command line or a YAML file (the command line wins). No credentials here."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass

from savos.precision import PRECISION_CHOICES, PRECISION_HELP
from savos.quality import DEFAULT_QUALITY, PRESETS, Quality, chosen_quality

from .corpus import LAYOUTS
from .retry import RetryPolicy

Count = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]
_CHOICES = {"quality": tuple(PRESETS), "precision": tuple(PRECISION_CHOICES)}
# Below this a frame is too small for the network's 1/32 stride to see anything (64x64).
MIN_PIXELS = 64 * 64


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class JobConfig:
    """The job's options, validated when built (types and ranges): from flags, YAML or code alike.

    YAML values are read as a person means them: ``"2"`` is 2, ``"false"`` is False, a single scale is a list of
    one; anything else that is not of the option's type or range is an error naming the option.
    """

    input: str
    output: str
    checkpoint: str | None = None  # None: the checkpoint shipped with the package
    layout: Literal["auto", "davis", "videos", "manifest"] = "auto"
    num_actors: Count = 1
    gpus_per_actor: Annotated[float, Field(ge=0)] = 1.0  # used only where the cluster has GPUs; fractions pack
    cpus_per_actor: Positive = 1.0
    quality: str = DEFAULT_QUALITY  # test-time preset (savos.quality); the six options below override it
    scales: tuple[Annotated[float, Field(gt=0, le=4)], ...] | None = None
    flip: bool | None = None
    online_steps: Annotated[int, Field(ge=0)] | None = None  # per-video decoder fine-tuning steps (0: off)
    online_lr: Positive | None = None
    search_radius: Annotated[float, Field(ge=0, le=10)] | None = None  # fraction of the short side (0: anywhere)
    short_side: Annotated[int, Field(ge=0)] | None = None  # frames scaled down to it for the network (0: native)
    precision: str = "auto"
    compile: bool = False  # torch.compile the network: 15-20 s per batch size on a GPU, then about 1.6x faster
    lockstep: Annotated[int, Field(ge=0)] = 0  # videos an actor advances together (0: 8 on a GPU, 1 on a CPU)
    videos_per_call: Annotated[int, Field(ge=0)] = 0  # videos handed to an actor in one call (0: the lock-step width)
    max_videos: Annotated[int, Field(ge=0)] | None = None
    retry_failed: bool = False
    corrections: str | None = None  # a store of people's corrections (savos import-corrections): more annotations
    backward: bool = False  # also propagate backwards from annotations after frame 0 (and from corrections)
    carry_from: str | None = None  # an earlier output version: videos without new corrections are copied from it
    progress_every: Annotated[float, Field(ge=0)] = 30.0  # seconds between progress log lines
    preview_every: Annotated[int, Field(ge=0)] = 0  # a contact sheet for about one video in N (0: none)
    max_pixels: Annotated[int, Field(ge=MIN_PIXELS)] = 1920 * 1080  # larger frames go through the model downscaled
    max_pass_pixels: Annotated[int, Field(ge=MIN_PIXELS)] | None = None  # network input pixels per pass
    max_objects: Count = 64  # a video with more objects is a failure record, not an out-of-memory
    allow_output_in_input: bool = False  # refuse an output prefix inside the input unless told
    storage_retries: Count = RetryPolicy.attempts  # tries per storage operation (savos_job.retry) before giving up
    # URI schemes a manifest may point to besides the input's own (a manifest could name any server otherwise).
    allow_schemes: tuple[str, ...] = ()
    address: str | None = None  # "auto" joins a running cluster; None starts a local Ray instance

    @field_validator("scales", "allow_schemes", mode="before")
    @classmethod
    def _one_is_a_list_of_one(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float | str) else value

    @field_validator("quality", "precision")
    @classmethod
    def _one_of_its_choices(cls, value: str, info: ValidationInfo) -> str:
        choices = _CHOICES[str(info.field_name)]
        if value not in choices:
            raise ValueError(f"unknown {info.field_name} {value!r}; choose one of {', '.join(choices)}")
        return value

    @field_validator("short_side")
    @classmethod
    def _a_short_side_the_network_can_take(cls, value: int | None) -> int | None:
        Quality(short_side=value or None)  # raises, naming the limit
        return value

    @model_validator(mode="after")
    def _online_lr_needs_online_steps(self) -> JobConfig:
        try:
            self.test_time()
        except ValueError as err:
            raise ValueError(f"online_lr: {err}") from err
        return self

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def retry_policy(self) -> RetryPolicy:
        """How the run's storage calls are retried (:mod:`savos_job.retry`)."""
        return RetryPolicy(attempts=self.storage_retries)

    def actor_args(self, run_id: str) -> dict[str, Any]:
        """What the driver hands each of a run's actors: these options and the run's id."""
        return {**self.to_dict(), "run_id": run_id}

    @classmethod
    def from_actor_args(cls, args: dict[str, Any]) -> tuple[JobConfig, str | None]:
        """The options and the run's id an actor was handed (:meth:`actor_args`; a bare config has no run id)."""
        options = dict(args)
        run_id = options.pop("run_id", None)
        return cls(**options), run_id

    def test_time(self) -> Quality:
        """The quality preset with the test-time options this job gives explicitly."""
        return chosen_quality(self)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="savos-prelabel",
        description="Propagate first-frame masks through every video of a corpus with SAVOS on Ray; "
        "write one Parquet file of COCO-RLE masks per video.",
    )
    parser.add_argument("--config", type=Path, help="YAML file with any of the options below (snake_case keys)")
    parser.add_argument("--input", help="corpus URI: s3://, gs://, file:// or a path (folder or manifest)")
    parser.add_argument("--output", help="output URI: masks/, failures/ and _runs/ go under it")
    parser.add_argument("--checkpoint", help="SAVOS checkpoint URI (default: the one shipped with the package)")
    parser.add_argument("--layout", choices=LAYOUTS, help="corpus layout (default: auto)")
    parser.add_argument("--num-actors", type=int, help="model replicas (default: 1)")
    parser.add_argument("--gpus-per-actor", type=float, help="GPUs per replica, fractions allowed (default: 1)")
    parser.add_argument("--cpus-per-actor", type=float, help="CPUs per replica (default: 1)")
    parser.add_argument(
        "--quality",
        choices=list(PRESETS),
        help=f"test-time preset, see MODEL_CARD.md for each one's dev score and cost (default: {DEFAULT_QUALITY})",
    )
    parser.add_argument("--scales", type=float, nargs="+", help="inference scales, e.g. 0.5 0.75 1.0")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, help="also run each frame mirrored")
    parser.add_argument(
        "--online-steps", type=int, help="fine-tune each video's decoder on its annotated frame first (0: off)"
    )
    parser.add_argument("--online-lr", type=float, help="learning rate of that fine-tuning (default: the preset's)")
    parser.add_argument(
        "--search-radius",
        type=float,
        help="keep each object within this fraction of the frame's shorter side of its previous mask (0: anywhere)",
    )
    parser.add_argument(
        "--short-side",
        type=int,
        help="frames with a longer shorter side go through the network scaled down to it (default: the preset's, "
        "480; 0: each frame at its own size)",
    )
    parser.add_argument("--precision", choices=PRECISION_CHOICES, help=PRECISION_HELP)
    parser.add_argument(
        "--lockstep",
        type=int,
        help="videos each actor advances together, frame t of each in one batch (default: 8 with GPUs, 1 on CPUs)",
    )
    parser.add_argument(
        "--videos-per-call",
        type=int,
        help="videos handed to an actor in one call (default: the lock-step width; fewer calls for the driver)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the network once per batch size (on a GPU: 15-20 s each, then faster; for long runs)",
    )
    parser.add_argument("--max-videos", type=int, help="label at most this many videos (after skipping done ones)")
    parser.add_argument("--retry-failed", action="store_true", default=None, help="retry videos that failed before")
    parser.add_argument(
        "--corrections",
        help="corrections store URI (savos import-corrections): a video's corrected masks are annotations that win "
        "on their frame, and it is propagated from them",
    )
    parser.add_argument(
        "--backward",
        action="store_true",
        default=None,
        help="also propagate backwards from annotations after frame 0: objects that appear later get masks before "
        "their first annotation, a correction also updates the frames since the object's previous annotation",
    )
    parser.add_argument(
        "--carry-from",
        metavar="PREVIOUS_OUTPUT",
        help="an earlier output of the same model and settings: videos with new corrections (--corrections) are "
        "labelled again, the others' masks are copied from it (server-side on object storage), not recomputed",
    )
    parser.add_argument("--max-pixels", type=int, help="model input pixel budget per frame (default: 1920x1080)")
    parser.add_argument(
        "--max-pass-pixels",
        type=int,
        help="network input pixels per batch pass, which bounds GPU memory however many objects "
        "(default: 64 frames of 480p on a GPU, 8 on a CPU)",
    )
    parser.add_argument("--max-objects", type=int, help="objects per video before it is refused (default: 64)")
    parser.add_argument(
        "--allow-output-in-input", action="store_true", default=None, help="allow --output inside --input"
    )
    parser.add_argument("--storage-retries", type=int, help="tries per storage operation (default: 6)")
    parser.add_argument("--preview-every", type=int, help="write previews/<id>.png for about one video in N")
    parser.add_argument("--progress-every", type=float, help="seconds between progress log lines (default: 30)")
    parser.add_argument(
        "--allow-schemes",
        nargs="+",
        metavar="SCHEME",
        help="URI schemes a manifest may name besides the input's own, e.g. gs https (default: none)",
    )
    parser.add_argument("--address", help="Ray address, e.g. auto (default: start a local Ray)")
    return parser


def parse_config(argv: Sequence[str] | None = None) -> JobConfig:
    """Options from ``--config`` YAML, overridden by those given on the command line; checked before anything
    starts (argparse's exit status 2, with the option and the problem, on any mistake)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    if args.config:
        values.update(_read_yaml(parser, args.config))
    values.update({k: v for k, v in vars(args).items() if k != "config" and v is not None})
    for required in ("input", "output"):
        if not values.get(required):
            parser.error(f"--{required} is required (on the command line or in --config)")
    try:
        return JobConfig(**values)
    except ValidationError as err:
        parser.error("; ".join(_describe(problem, args.config) for problem in err.errors()))


def _read_yaml(parser: argparse.ArgumentParser, path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        parser.error(f"{path}: cannot read the configuration ({err})")
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        parser.error(f"{path}: the configuration must be a mapping of options, not {type(loaded).__name__}")
    unknown = sorted(map(str, set(loaded) - {f.name for f in fields(JobConfig)}))
    if unknown:
        parser.error(f"{path}: unknown keys {', '.join(unknown)}")
    return loaded


def _describe(problem: Any, config: Path | None) -> str:
    """One validation problem as ``--option (or KEY in FILE): what is wrong, got VALUE``."""
    message = str(problem["msg"]).removeprefix("Value error, ")
    if problem["loc"]:
        name, got = str(problem["loc"][0]), f", got {problem['input']!r}"
    else:  # a check across options names the one at fault first
        name, _, message = message.partition(": ")
        got = ""
    where = f"--{name.replace('_', '-')}" + (f" (or {name} in {config})" if config else "")
    return f"{where}: {message}{got}"
