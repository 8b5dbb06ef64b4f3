"""Job outputs the export tests share: the real judo sample, and a generated clip where the data is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from savos.checkpoint import load_default_model
from savos.data.synthetic import make_video
from savos.inference import Predictor
from savos.io import VideoMasks, read_video_masks
from savos.model import build_savos
from savos_job.corpus import discover
from savos_job.labeler import VideoLabeler
from tests.conftest import TINY, shared_data, write_dataset
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


@pytest.fixture(scope="module", params=["generated", "judo"])
def labelled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, VideoMasks]:
    """``(frames folder, masks)`` of one video the job labelled: a generated three-object clip (a small random
    model, so it runs on a fresh clone), and the real judo sample where the shared data is present."""
    if request.param == "judo":
        return request.getfixturevalue("judo")[0], request.getfixturevalue("judo_masks")
    root = tmp_path_factory.mktemp("generated")
    corpus = write_dataset(root / "corpus", {"clip": make_video(8, num_objects=3, seed=2)}, every=1000)
    labeler = VideoLabeler(
        Predictor(build_savos(TINY, backbone_weights="none").eval(), device="cpu"), "tiny", output_at(str(root / "out"))
    )
    (task,) = discover(str(corpus))
    assert labeler.run_one(task).status == "done"
    return corpus / "JPEGImages" / "480p" / "clip", read_video_masks(str(root / "out"), "clip")
