"""``make demo-davis``: real video from a DAVIS copy of the user's own, labelled by the job and scored."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from savos.data.errors import InputError
from savos.data.synthetic import make_video
from savos.data.vos import DAVIS2016_DEV
from savos.io import read_video_masks
from savos_job.demo import DAVIS_PAIR, run_davis_demo, write_davis_corpus
from tests.conftest import write_dataset

COMPOSITE = "+".join(DAVIS_PAIR)


def _davis(root: Path) -> Path:
    """A stand-in for DAVIS-2016: the dev sequences' names, one object each, every frame annotated."""
    videos = {name: make_video(5, 96, 160, 1, seed) for seed, name in enumerate(DAVIS2016_DEV)}
    return write_dataset(root, videos)


def test_the_corpus_gives_the_job_only_each_first_mask(tmp_path: Path) -> None:
    sequences = write_davis_corpus(tmp_path / "corpus", tmp_path / "truth", _davis(tmp_path / "davis"))
    assert [seq.name for seq in sequences] == [*DAVIS2016_DEV, COMPOSITE]
    for seq in sequences:
        assert [p.name for p in (tmp_path / "corpus" / "Annotations" / seq.name).iterdir()] == ["00000.png"]
        assert len(list((tmp_path / "corpus" / "JPEGImages" / seq.name).iterdir())) == len(seq) == 5
    assert set(sequences[-1].labels(0).flatten()) == {0, 1, 2}  # the composite: two objects


def test_a_davis_root_without_the_dev_sequences_is_named(tmp_path: Path) -> None:
    davis = write_dataset(tmp_path / "davis", {"bear": make_video(3, 64, 64, 1, 0)})
    with pytest.raises(InputError, match="dog-agility"):
        write_davis_corpus(tmp_path / "corpus", tmp_path / "truth", davis)


@pytest.mark.ray
@pytest.mark.slow  # ~8 s on 2 CPU cores (a local Ray): the only run of what `make demo-davis` runs
def test_real_video_is_labelled_and_scored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ray = pytest.importorskip("ray")
    try:
        scores = run_davis_demo(tmp_path / "out", _davis(tmp_path / "davis"), num_actors=1)
    finally:
        ray.shutdown()
    assert sorted(scores) == sorted([*DAVIS2016_DEV, COMPOSITE])
    assert all(0 <= score <= 1 and not math.isnan(score) for score in scores.values())
    assert read_video_masks(str(tmp_path / "out" / "davis-labels"), COMPOSITE).obj_ids == [1, 2]
    printed = capsys.readouterr().out
    assert "all (objects pooled)" in printed
    assert f"{tmp_path / 'out' / 'davis-labels' / 'previews'}" in printed
