"""A rerun with a corrections store: a corrected frame is an annotation that wins on its frame, the object is
propagated from it, frames before it are as before, and a video without corrections is labelled as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from savos.data.synthetic import make_video
from savos.inference import Predictor
from savos.io import compact, read_video_masks
from savos.io.corrections import Correction, CorrectionStore
from savos.model import SAVOS
from savos_job.config import parse_config
from savos_job.corpus import discover
from savos_job.labeler import VideoLabeler
from savos_job.prelabel import EXIT_SOME_FAILED, main
from tests.conftest import write_dataset
from tests.jobs.invariants import output_at

K = 3


def _label(corpus: Path, out: Path, model: SAVOS, corrections: str | None = None, backward: bool = False) -> None:
    predictor = Predictor(model, device="cpu")
    labeler = VideoLabeler(predictor, "tiny", output_at(str(out)), corrections=corrections, backward=backward)
    for task in discover(str(corpus)):
        assert labeler.run_one(task).status == "done"


def test_a_correction_wins_on_its_frame_and_is_propagated_from(tmp_path: Path, tiny_model: SAVOS) -> None:
    truth = {name: make_video(6, num_objects=2, seed=seed) for name, seed in (("a", 3), ("b", 4))}
    corpus = write_dataset(tmp_path / "corpus", truth, every=1000)  # first-frame masks only
    _label(corpus, tmp_path / "v1", tiny_model)
    v1 = read_video_masks(str(tmp_path / "v1"), "a")
    fix = truth["a"].masks[K] == 1
    assert not np.array_equal(fix, v1.ids[K] == 1)  # the correction changes something
    store = tmp_path / "corrections"
    CorrectionStore(str(store)).add("a", [Correction(K, v1.frame_names[K], 1, fix)])

    _label(corpus, tmp_path / "v2", tiny_model, corrections=str(store))
    v2 = read_video_masks(str(tmp_path / "v2"), "a")
    np.testing.assert_array_equal(v2.ids[:K], v1.ids[:K])  # before the fix: as before
    np.testing.assert_array_equal(v2.ids[K] == 1, fix)  # on its frame: the fix
    assert not np.array_equal(v2.ids[K + 1 :], v1.ids[K + 1 :])  # after it: propagated from the fix
    b1, b2 = (read_video_masks(str(tmp_path / v), "b") for v in ("v1", "v2"))
    np.testing.assert_array_equal(b2.ids, b1.ids)  # no corrections: the same masks


def test_the_job_takes_a_corrections_store() -> None:
    config = parse_config(["--input", "in/", "--output", "out/", "--corrections", "s3://bucket/corrections"])
    assert config.corrections == "s3://bucket/corrections"
    assert not config.backward
    assert parse_config(["--input", "in/", "--output", "out/", "--backward", "--carry-from", "v1/"]).backward


@pytest.mark.ray
def test_videos_are_carried_from_a_compacted_version_and_a_failed_one_is_labelled(
    ray_local, tmp_path: Path, checkpoint: Path
) -> None:
    truth = {name: make_video(4, num_objects=2, seed=seed) for seed, name in enumerate("abc", start=20)}
    corpus = write_dataset(tmp_path / "corpus", truth, every=1000)
    frame = corpus / "JPEGImages" / "480p" / "c" / "00001.jpg"
    good = frame.read_bytes()
    frame.write_bytes(b"")  # c fails in v1

    def job(version: str, *extra: str) -> int:
        return main(
            ["--input", str(corpus), "--output", str(tmp_path / version), "--checkpoint", str(checkpoint), *extra]
        )

    assert job("v1") == EXIT_SOME_FAILED
    compact(str(tmp_path / "v1"))
    fix = truth["a"].masks[2] == 2
    CorrectionStore(str(tmp_path / "fixes")).add("a", [Correction(2, "00002", 2, fix)])
    frame.write_bytes(good)
    assert job("v2", "--corrections", str(tmp_path / "fixes"), "--carry-from", str(tmp_path / "v1")) == 0

    (path,) = (tmp_path / "v2" / "_runs").glob("*.json")
    summary = json.loads(path.read_text())
    assert (summary["videos_done"], summary["videos_carried"], summary["videos_failed"]) == (2, 1, 0)
    assert summary["videos_with_new_corrections"]["first"] == ["a"]
    # b, compacted in v1, is a per-video file again in v2, with the same masks.
    assert (tmp_path / "v2" / "masks" / "video_id=b" / "part-0.parquet").exists()
    b1, b2 = (read_video_masks(str(tmp_path / v), "b") for v in ("v1", "v2"))
    np.testing.assert_array_equal(b2.ids, b1.ids)
    np.testing.assert_array_equal(read_video_masks(str(tmp_path / "v2"), "a").ids[2] == 2, fix)
    assert len(read_video_masks(str(tmp_path / "v2"), "c").ids) == 4  # failed before: labelled now


def test_with_backward_propagation_a_correction_changes_only_the_frames_since_the_previous_annotation(
    tmp_path: Path, tiny_model: SAVOS
) -> None:
    truth = {"a": make_video(6, num_objects=2, seed=3)}
    corpus = write_dataset(tmp_path / "corpus", truth, every=1000)
    _label(corpus, tmp_path / "v1", tiny_model)
    v1 = read_video_masks(str(tmp_path / "v1"), "a")
    store = tmp_path / "corrections"
    CorrectionStore(str(store)).add("a", [Correction(K, v1.frame_names[K], 1, truth["a"].masks[K] == 1)])
    _label(corpus, tmp_path / "forward", tiny_model, corrections=str(store))
    _label(corpus, tmp_path / "both", tiny_model, corrections=str(store), backward=True)
    forward, both = (read_video_masks(str(tmp_path / v), "a") for v in ("forward", "both"))
    np.testing.assert_array_equal(both.ids[0], v1.ids[0])  # the annotated first frame
    assert not np.array_equal(both.ids[1:K], forward.ids[1:K])  # between the annotations: both directions
    np.testing.assert_array_equal(both.ids[K:], forward.ids[K:])  # from the fix on: the forward pass


def test_a_removed_mask_is_an_absence_on_its_frame(tmp_path: Path, tiny_model: SAVOS) -> None:
    truth = {"a": make_video(6, num_objects=2, seed=3)}
    corpus = write_dataset(tmp_path / "corpus", truth, every=1000)
    _label(corpus, tmp_path / "v1", tiny_model)
    v1 = read_video_masks(str(tmp_path / "v1"), "a")
    assert (v1.ids[K] == 2).any()
    store = CorrectionStore(str(tmp_path / "corrections"))
    nothing = np.zeros(v1.ids.shape[1:], bool)
    store.add("a", [Correction(K, v1.frame_names[K], 2, nothing)])
    assert not (tmp_path / "corrections" / "a" / f"{K:05d}.png").exists()  # no mask left on that frame
    assert json.loads((tmp_path / "corrections" / "a" / "removed.json").read_text()) == {f"{K:05d}": [2]}

    _label(corpus, tmp_path / "v2", tiny_model, corrections=str(store.uri))
    v2 = read_video_masks(str(tmp_path / "v2"), "a")
    np.testing.assert_array_equal(v2.ids[:K], v1.ids[:K])
    assert not (v2.ids[K] == 2).any()  # removed where the person removed it

    # A later fix of the object on that frame replaces the removal.
    store.add("a", [Correction(K, v1.frame_names[K], 2, truth["a"].masks[K] == 2)])
    assert json.loads((tmp_path / "corrections" / "a" / "removed.json").read_text()) == {}
    assert (tmp_path / "corrections" / "a" / f"{K:05d}.png").exists()
