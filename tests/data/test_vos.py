"""Dataset roots: DAVIS and YouTube-VOS layouts, the dev split, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from savos.data import InputError
from savos.data.synthetic import make_video
from savos.data.vos import DAVIS2016_DEV, load_sequences, split_sequences
from tests.conftest import shared_data, write_dataset


def test_davis_layout(tmp_path: Path) -> None:
    videos = {"cat": make_video(4, seed=1), "dog": make_video(5, seed=2)}
    root = write_dataset(tmp_path, videos)
    cat, dog = load_sequences(root)
    assert (cat.name, len(cat), len(dog)) == ("cat", 4, 5)
    assert cat.annotated == [0, 1, 2, 3]
    np.testing.assert_array_equal(dog.labels(3), videos["dog"].masks[3])
    assert dog.image(0).shape == (64, 96, 3)


def test_youtube_vos_layout_with_sparse_masks(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, {"v1": make_video(11, seed=3)}, davis=False, every=5)
    (seq,) = load_sequences(root)
    assert seq.annotated == [0, 5, 10]
    with pytest.raises(InputError, match="frame has no ground-truth mask"):
        seq.labels(1)


def test_named_sequences_and_split(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, {name: make_video(3, seed=i) for i, name in enumerate("abcd")})
    assert [s.name for s in load_sequences(root, ["d", "a"])] == ["d", "a"]
    train, dev = split_sequences(load_sequences(root), ["b", "c"])
    assert [s.name for s in train] == ["a", "d"]
    assert [s.name for s in dev] == ["b", "c"]
    with pytest.raises(ValueError, match="dev sequences not in the dataset: zz"):
        split_sequences(load_sequences(root), ["zz"])
    with pytest.raises(InputError, match="sequence 'zz' not found"):
        load_sequences(root, ["zz"])


def test_not_a_dataset_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a DAVIS or YouTube-VOS root"):
        load_sequences(tmp_path)


def test_davis2016_train_split() -> None:
    root = shared_data("davis2016-train")
    train, dev = split_sequences(load_sequences(root))
    assert (len(train), len(dev)) == (25, 5)
    assert {s.name for s in dev} == set(DAVIS2016_DEV)
    bear = next(s for s in dev if s.name == "bear")
    # bear/00077.png is the one grey+alpha mask in the set: it must read like the others.
    assert set(np.unique(bear.labels(77)).tolist()) == {0, 1}


def test_composite_dataset_via_cli(tmp_path: Path) -> None:
    from savos.cli import main

    videos = {"base": make_video(6, num_objects=1, seed=4), "donor": make_video(5, num_objects=1, seed=5)}
    root = write_dataset(tmp_path / "src", videos)
    args = ["composite", "--data", str(root), "--pairs", "base+donor", "--out", str(tmp_path / "mix"), "--seed", "1"]
    assert main(args) == 0
    (seq,) = load_sequences(tmp_path / "mix")
    assert seq.name == "base+donor"
    assert len(seq) == 5  # the shorter of the two
    ids = seq.labels(0)
    assert set(np.unique(ids).tolist()) == {0, 1, 2}
    # Where the donor is not pasted, the base's own labels are untouched.
    base_first = videos["base"].masks[0]
    np.testing.assert_array_equal(ids[ids != 2], base_first[ids != 2])
