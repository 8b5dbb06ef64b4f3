"""Quality presets and the options that override them."""

from __future__ import annotations

import argparse

import pytest

from savos.cli import build_parser
from savos.quality import (
    BALANCED,
    BEST,
    FAST,
    OVERRIDE_OPTIONS,
    PRESETS,
    OnlineAdaptation,
    Quality,
    chosen_quality,
    quality_preset,
)


def test_presets_are_what_the_model_card_measured() -> None:
    assert PRESETS == {"fast": FAST, "balanced": BALANCED, "best": BEST}
    assert Quality(scales=(0.875,), flip=False, online=None, search_radius=0.2, short_side=480) == FAST
    assert Quality(scales=(0.5, 0.75, 1.0), search_radius=0.2, short_side=480) == BALANCED
    assert BEST.short_side == 480
    assert BEST.search_radius is None
    assert BEST.online == OnlineAdaptation(steps=30, lr=1e-4, batch_size=2, clip_length=2, crop=(384, 640))
    assert BEST.scales == (1.0,)
    assert not BEST.flip


def test_explicit_options_override_the_preset() -> None:
    best = quality_preset("best")
    assert best.with_overrides(online_steps=0).online is None
    assert best.with_overrides(online_steps=5, online_lr=1e-4).online == OnlineAdaptation(steps=5, lr=1e-4)
    assert quality_preset("fast").with_overrides(online_steps=7).online == OnlineAdaptation(steps=7)
    assert quality_preset("balanced").with_overrides(scales=(1.0,), flip=True) == Quality(
        flip=True, search_radius=0.2, short_side=480
    )
    assert best.with_overrides() == best
    assert quality_preset("fast").with_overrides(search_radius=0.3).search_radius == 0.3
    assert quality_preset("fast").with_overrides(search_radius=0) == Quality(scales=(0.875,), short_side=480)
    assert quality_preset("fast").with_overrides(short_side=0).short_side is None
    assert quality_preset("best").with_overrides(short_side=720).short_side == 720


def test_nonsense_is_refused_with_the_option_named() -> None:
    with pytest.raises(ValueError, match="unknown quality 'ultra'"):
        quality_preset("ultra")
    with pytest.raises(ValueError, match="online learning rate needs online adaptation"):
        quality_preset("fast").with_overrides(online_lr=1e-3)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["segment", "v/", "--mask", "m.png", "--out", "o/", "--online-steps", "-1"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["segment", "v/", "--mask", "m.png", "--out", "o/", "--search-radius", "-0.1"])
    with pytest.raises(ValueError, match="search radius must be a positive fraction"):
        Quality(search_radius=float("nan"))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["segment", "v/", "--mask", "m.png", "--out", "o/", "--short-side", "-1"])
    with pytest.raises(ValueError, match="short side must be at least 32 pixels"):
        Quality(short_side=8)


def test_the_summary_form_is_plain_json() -> None:
    assert BEST.online is not None
    assert BEST.to_dict() == {
        "scales": [1.0],
        "flip": False,
        "online": BEST.online.to_dict(),
        "search_radius": BEST.search_radius,
        "short_side": 480,
    }
    assert BEST.online.to_dict()["mix"] == {"simulated": 0.5, "lucid": 0.5}


def test_the_options_a_command_line_or_job_config_gives_override_its_preset() -> None:
    options = argparse.Namespace(quality="best", **dict.fromkeys(OVERRIDE_OPTIONS))
    assert chosen_quality(options) == BEST
    options.short_side, options.online_steps, options.search_radius = 0, 5, 0.3
    chosen = chosen_quality(options)
    assert chosen == BEST.with_overrides(short_side=0, online_steps=5, search_radius=0.3)
    assert (chosen.short_side, chosen.online, chosen.search_radius) == (None, OnlineAdaptation(steps=5), 0.3)
