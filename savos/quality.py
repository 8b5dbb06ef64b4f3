"""Quality presets: named sets of test-time options, each measured as a whole on the dev split (MODEL_CARD.md).

Effects do not simply add (multi-scale helps large objects and loses small ones; online adaptation changes
which scales help), so a preset is what was measured together, not a sum of options.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

# Clip sources that need only the annotated frame (video and composite clips need other frames).
STILL_SOURCES = ("simulated", "lucid")
# The encoder's stride: a smaller crop has no top-level features.
_MIN_CROP = 32


@dataclass(frozen=True)
class OnlineAdaptation:
    """How a video's decoder is fine-tuned on its annotated frames (``steps`` optimiser steps of AdamW)."""

    steps: int = 30
    lr: float = 1e-4
    batch_size: int = 2
    clip_length: int = 2
    # Crop (H, W) for a landscape frame (swapped for a portrait one), at the size the network sees the frame.
    crop: tuple[int, int] = (384, 640)
    mix: tuple[tuple[str, float], ...] = (("simulated", 0.5), ("lucid", 0.5))
    max_objects: int = 4  # objects per training clip (a frame with more contributes a random few per clip)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.clip_length < 1 or self.max_objects < 1:
            raise ValueError("steps, batch_size, clip_length and max_objects of online adaptation must be positive")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"online adaptation lr must be a positive number, got {self.lr}")
        if not self.mix or any(source not in STILL_SOURCES for source, _ in self.mix):
            raise ValueError(f"online adaptation clips come from one frame: mix of {', '.join(STILL_SOURCES)} only")
        if min(self.crop) < _MIN_CROP:
            raise ValueError(f"online adaptation crop must be at least {_MIN_CROP} pixels a side, got {self.crop}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mix"] = dict(self.mix)
        return data


@dataclass(frozen=True)
class Quality:
    """Test-time options of a :class:`~savos.inference.Predictor`: ``scales``, ``flip``, ``online``,
    ``search_radius`` (each object kept within this fraction of the frame's shorter side of its previous mask,
    :mod:`savos.inference.search`; None: anywhere) and ``short_side`` (a frame whose shorter side is longer goes
    through the network scaled down to it, before ``scales``; masks come back at the frame's size. None: at its own
    size)."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    online: OnlineAdaptation | None = None
    search_radius: float | None = None
    short_side: int | None = None

    def __post_init__(self) -> None:
        if self.search_radius is not None and not (self.search_radius > 0 and math.isfinite(self.search_radius)):
            raise ValueError(f"the search radius must be a positive fraction of the frame, got {self.search_radius}")
        if self.short_side is not None and self.short_side < _MIN_CROP:
            raise ValueError(f"the short side must be at least {_MIN_CROP} pixels, got {self.short_side}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what a run summary records."""
        return {
            "scales": list(self.scales),
            "flip": self.flip,
            "online": self.online.to_dict() if self.online is not None else None,
            "search_radius": self.search_radius,
            "short_side": self.short_side,
        }

    def with_overrides(
        self,
        *,
        scales: tuple[float, ...] | None = None,
        flip: bool | None = None,
        online_steps: int | None = None,
        online_lr: float | None = None,
        search_radius: float | None = None,
        short_side: int | None = None,
    ) -> Quality:
        """This preset with the options a user gave explicitly (None: the preset's); 0 online steps: none; search
        radius 0: anywhere; short side 0: each frame at its own size."""
        quality = self
        if scales is not None:
            quality = replace(quality, scales=tuple(float(s) for s in scales))
        if flip is not None:
            quality = replace(quality, flip=flip)
        if online_steps is not None:
            online = None if online_steps == 0 else replace(quality.online or OnlineAdaptation(), steps=online_steps)
            quality = replace(quality, online=online)
        if online_lr is not None:
            if quality.online is None:
                raise ValueError("an online learning rate needs online adaptation: a preset with it, or online steps")
            quality = replace(quality, online=replace(quality.online, lr=online_lr))
        if search_radius is not None:
            quality = replace(quality, search_radius=search_radius or None)
        if short_side is not None:
            quality = replace(quality, short_side=short_side or None)
        return quality


# Measured on the dev split as wholes (MODEL_CARD.md): mirrored views added nothing to online adaptation
# (at its earlier lr 1e-5: 0.762 with, 0.763 without) and little alone (0.696 against 0.690), so no preset
# uses them. The search window keeps look-alikes off the plain network's masks (+0.01 J&F); an adapted decoder
# is not fooled by them (+0.001), so best goes without it. fast's one pass sees the frame at 7/8 of its size: a
# fast-moving object moves fewer feature cells a frame (dev +0.008, all of it on the fastest sequence) and the
# pass costs 0.83 of the FLOPs; at 3/4 a small pasted object of a composite was lost.
SEARCH_RADIUS = 0.2  # of the frame's shorter side: 96 pixels at 480p
# The network was trained on 480p frames. An HD frame seen at its own size shows it objects and motion twice as
# large as it learned them: the dev split upscaled to 960p lost 0.08 J&F with fast (a fast dog 0.65 -> 0.27), and
# brought down to 480 pixels it scored what it does at 480p.
SHORT_SIDE = 480
FAST = Quality(scales=(0.875,), search_radius=SEARCH_RADIUS, short_side=SHORT_SIDE)  # one pass; the default
BALANCED = Quality(scales=(0.5, 0.75, 1.0), search_radius=SEARCH_RADIUS, short_side=SHORT_SIDE)  # three passes
BEST = Quality(online=OnlineAdaptation(), short_side=SHORT_SIDE)  # a decoder fine-tuned per video, then one pass
PRESETS = {"fast": FAST, "balanced": BALANCED, "best": BEST}
DEFAULT_QUALITY = "fast"


def preset_name(quality: Quality) -> str | None:
    """The name of the preset ``quality`` is (None for a preset with options changed)."""
    return next((name for name, preset in PRESETS.items() if preset == quality), None)


# The options that override a preset, named as a command line and a job config name them (Quality.with_overrides).
OVERRIDE_OPTIONS = ("scales", "flip", "online_steps", "online_lr", "search_radius", "short_side")


def chosen_quality(options: Any) -> Quality:
    """The preset ``options.quality`` with the overrides of :data:`OVERRIDE_OPTIONS` that ``options`` (a parsed
    command line or a job config) gives: what a user chose."""
    return quality_preset(options.quality).with_overrides(**{name: getattr(options, name) for name in OVERRIDE_OPTIONS})


def quality_preset(name: str) -> Quality:
    """The preset called ``name`` (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown quality {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
