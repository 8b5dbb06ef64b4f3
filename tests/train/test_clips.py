"""The clip sampler: sizes, ids, sources, and determinism by generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from savos.data.synthetic import make_video
from savos.data.vos import Sequence, load_sequences
from savos.train.clips import SOURCES, ClipSampler
from tests.conftest import write_dataset


@pytest.fixture(scope="module")
def sequences(tmp_path_factory: pytest.TempPathFactory) -> list[Sequence]:
    root = tmp_path_factory.mktemp("davis")
    videos = {f"v{i}": make_video(8, 64, 96, num_objects=1 + i % 2, seed=i) for i in range(3)}
    return load_sequences(write_dataset(root, videos))


@pytest.mark.parametrize("source", SOURCES)
def test_every_source_gives_a_well_formed_clip(sequences: list[Sequence], source: str) -> None:
    sampler = ClipSampler(sequences, size=(48, 64), length=3, mix={source: 1.0})
    for seed in range(4):
        clip = sampler.sample(np.random.default_rng(seed))
        assert clip.source == source
        assert clip.reference_image.shape == (48, 64, 3)
        assert clip.reference_labels.shape == (48, 64)
        assert len(clip.images) == len(clip.labels) == 3
        m = clip.num_objects
        assert clip.first_guidance.shape == (m, 48, 64)
        assert clip.first_guidance.dtype == bool
        # Ids are renumbered 1..M and no other id survives.
        for ids in (clip.reference_labels, *clip.labels):
            assert set(np.unique(ids).tolist()) <= set(range(m + 1))


def test_composite_clips_add_the_donor_objects(sequences: list[Sequence]) -> None:
    sampler = ClipSampler(sequences, size=(48, 64), mix={"composite": 1.0})
    counts = [sampler.sample(np.random.default_rng(seed)).num_objects for seed in range(6)]
    assert min(counts) >= 2


def test_same_generator_same_clip(sequences: list[Sequence]) -> None:
    sampler = ClipSampler(sequences, size=(48, 64))
    a, b = (sampler.sample(np.random.default_rng([7, 3])) for _ in range(2))
    assert a.source == b.source
    np.testing.assert_array_equal(a.reference_image, b.reference_image)
    np.testing.assert_array_equal(np.stack(a.labels), np.stack(b.labels))
    np.testing.assert_array_equal(a.first_guidance, b.first_guidance)


def test_bad_mixes_are_refused(sequences: list[Sequence]) -> None:
    with pytest.raises(ValueError, match="unknown clip sources"):
        ClipSampler(sequences, mix={"dreams": 1.0})
    with pytest.raises(ValueError, match="at least two sequences"):
        ClipSampler(sequences[:1], mix={"composite": 1.0})


def test_real_davis_clip_is_cropped_to_size() -> None:
    from tests.conftest import shared_data

    root = shared_data("davis2016-train")
    sampler = ClipSampler(load_sequences(Path(root), ["car-turn", "rhino"]), size=(224, 384))
    for seed in range(3):
        clip = sampler.sample(np.random.default_rng(seed))
        assert clip.reference_image.shape == (224, 384, 3)
