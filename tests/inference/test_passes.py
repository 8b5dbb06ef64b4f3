"""A step's rows go through the network in passes of bounded size, with the same results as one pass."""

from __future__ import annotations

import pytest
import torch

from savos.data.synthetic import make_video
from savos.inference import EngineOptions, FrameResult, Predictor
from savos.inference.passes import passes, rows_per_pass
from savos.model import SAVOS

from .test_engine import CallLog


def test_passes_cover_every_row_once_in_order_and_split_steps_where_needed() -> None:
    split = list(passes([3, 0, 5, 1], per_pass=4))
    assert split == [
        (0, [(0, 0, 3), (2, 0, 1)]),
        (4, [(2, 1, 5)]),
        (8, [(3, 0, 1)]),
    ]
    assert list(passes([2, 2], per_pass=4)) == [(0, [(0, 0, 2), (1, 0, 2)])]
    assert list(passes([], per_pass=4)) == []
    with pytest.raises(ValueError, match="per_pass must be at least 1"):
        list(passes([1], per_pass=0))


def test_rows_per_pass_is_the_budget_over_the_pixels_and_at_least_one() -> None:
    assert rows_per_pass(10 * 48 * 64, 48, 64) == 10
    assert rows_per_pass(10 * 48 * 64 + 100, 48, 64) == 10
    assert rows_per_pass(100, 1080, 1920) == 1


def test_many_objects_run_in_passes_within_the_budget_with_the_results_of_one_pass(tiny_model: SAVOS) -> None:
    """Two videos of five objects in lock-step, a budget of three rows: passes of 3, 3, 3 and 1 rows (a video
    split across passes), three reference passes per video, and the probabilities of an unbounded pass."""
    videos = [make_video(num_frames=4, height=48, width=64, num_objects=5, seed=seed) for seed in (3, 4)]

    def run(predictor: Predictor) -> list[torch.Tensor]:
        states = []
        for index, video in enumerate(videos):
            state = predictor.init_state(video.frames)
            for obj_id, mask in video.first_masks(5).items():
                predictor.add_mask(state, 0, obj_id, mask)
            states.append((index, state))
        events = predictor.propagate_many(states, max_active=2)
        return [e.probs.clone() for e in events if isinstance(e, FrameResult)]

    whole = run(Predictor(tiny_model, device="cpu", precision="fp32"))
    bounded = Predictor(
        tiny_model, device="cpu", precision="fp32", options=EngineOptions(max_pass_pixels=3 * 48 * 64 + 1)
    )
    log = CallLog(bounded.model)
    split = run(bounded)
    assert log.reference_batches == [3, 2, 3, 2]
    assert [rows for rows, _, _ in log.target_inputs] == [3, 3, 3, 1] * 3  # frames 1..3, ten rows each
    assert len(split) == len(whole) == 8
    for got, want in zip(split, whole, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_the_pass_budget_must_be_positive(tiny_model: SAVOS) -> None:
    with pytest.raises(ValueError, match="max_pass_pixels must be positive"):
        Predictor(tiny_model, device="cpu", options=EngineOptions(max_pass_pixels=0))
