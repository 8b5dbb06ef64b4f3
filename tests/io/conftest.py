"""The job's output for the real judo sample, shared by the export tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from savos.checkpoint import load_default_model
from savos.inference import Predictor
from savos.io import VideoMasks, read_video_masks
from savos_job.corpus import discover
from savos_job.labeler import VideoLabeler
from tests.conftest import shared_data
from tests.jobs.invariants import output_at

NAMES = {1: "judoka white", 2: "judoka blue", 3: "referee", 4: "judoka four"}


@pytest.fixture(scope="module")
def judo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(frames folder, job output)``: the batch job's labeler with the default checkpoint on the judo sample."""
    frames = shared_data("samples/cutie-examples/images/judo")
    masks = shared_data("samples/cutie-examples/masks/judo")
    root = tmp_path_factory.mktemp("judo")
    corpus = root / "corpus"
    for kind, source in (("JPEGImages", frames), ("Annotations", masks)):
        shutil.copytree(source, corpus / kind / "480p" / "judo")  # the job does not follow links
    model, _ = load_default_model()
    labeler = VideoLabeler(Predictor(model, device="cpu"), "default", output_at(str(root / "out")))
    (task,) = discover(str(corpus))
    assert labeler.run_one(task).status == "done"
    return frames, root / "out"


@pytest.fixture(scope="module")
def judo_masks(judo: tuple[Path, Path]) -> VideoMasks:
    video = read_video_masks(str(judo[1]), "judo")
    assert video.obj_ids == [1, 2, 3, 4]
    assert not (video.ids[:5] == 2).any()  # a late object: tracks start mid-video
    assert (video.ids[5] == 2).any()
    return video
