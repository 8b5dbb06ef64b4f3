"""Backward propagation: masks before an object's first annotation, corrections that update the frames since
the previous annotation, and nothing else changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from savos.data.synthetic import make_video
from savos.inference import Predictor, probs_to_ids
from savos.inference.aggregate import soft_aggregate
from savos.inference.backward import BackwardFrame, backward_spans, merge_directions
from savos.model import SAVOS

from .test_lockstep import started


def _labels(predictor: Predictor, state) -> dict[int, np.ndarray]:  # type: ignore[no-untyped-def]
    return {t: probs_to_ids(obj_ids, probs) for t, obj_ids, probs in predictor.propagate(state)}


def test_spans_run_from_the_previous_annotation_to_each_later_one() -> None:
    mask, absent = np.ones((2, 2), bool), np.zeros((2, 2), bool)
    prompts = {0: {1: mask}, 4: {1: mask, 2: mask}, 5: {1: mask}, 7: {3: mask}, 8: {2: absent}, 11: {2: mask}}
    # Object 1: 1-3 from its fix at 4 (5 follows 4 at once: nothing between); 2 and 3: from frame 0; object 2
    # again from 11 back to the frame after its absence at 8 (the absence itself starts nothing).
    assert backward_spans(prompts) == {4: {1: 1, 2: 0}, 7: {3: 0}, 11: {2: 9}}


def test_an_object_that_appears_later_gets_masks_before_it_and_the_rest_is_unchanged(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=6, height=48, width=64, num_objects=2, seed=5)
    predictor = Predictor(tiny_model, device="cpu")
    annotate = {0: [1], 3: [2]}
    forward = _labels(predictor, started(predictor, video, annotate))
    state = started(predictor, video, annotate)
    predictor.propagate_backward(state)
    assert sorted(state.backward) == [0, 1, 2]
    both = _labels(predictor, state)
    assert all(not (forward[t] == 2).any() for t in range(3))  # forward alone: object 2 only from frame 3
    assert all((both[t] == 2).any() for t in range(3))  # backwards too: before it
    for t in range(3, 6):
        np.testing.assert_array_equal(both[t], forward[t])  # from the annotation on: the forward pass as it was
    assert not state.backward  # each frame's backward result is dropped once used


def test_a_correction_changes_only_the_frames_since_the_previous_annotation(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=8, height=48, width=64, num_objects=1, seed=6)
    predictor = Predictor(tiny_model, device="cpu")
    annotate = {0: [1], 2: [1], 6: [1]}  # annotated at 0, again at 2 (nothing between 0 and 2 but frame 1), fix at 6
    forward = _labels(predictor, started(predictor, video, annotate))
    state = started(predictor, video, annotate)
    predictor.propagate_backward(state)
    assert sorted(state.backward) == [1, 3, 4, 5]
    both = _labels(predictor, state)
    for t in (0, 2, 6, 7):
        np.testing.assert_array_equal(both[t], forward[t])


def test_the_directions_are_averaged_and_objects_only_backwards_are_added() -> None:
    forward = torch.tensor([[[0.8]]])  # object 1
    backward = BackwardFrame([1, 2], torch.tensor([[[0.2]], [[0.5]]], dtype=torch.float16))
    obj_ids, probs = merge_directions([1], forward, backward)
    assert obj_ids == [1, 2]
    mixed = (0.8 + 0.2) / 2
    expected = soft_aggregate(torch.tensor([[[mixed]], [[0.5]]]))[1:]  # then aggregated again, as the engine does
    torch.testing.assert_close(probs, expected, atol=1e-3, rtol=0)


def test_frames_that_cannot_be_read_again_are_refused(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=4, height=48, width=64, num_objects=1, seed=7)
    predictor = Predictor(tiny_model, device="cpu")
    state = predictor.init_state(iter(list(video.frames)))  # a one-pass iterator
    predictor.add_mask(state, 2, 1, video.masks[2] == 1)
    with pytest.raises(ValueError, match="reads the frames again"):
        predictor.propagate_backward(state)


def test_an_absence_empties_its_frame_and_the_object_stays_tracked(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=5, height=48, width=64, num_objects=2, seed=8)
    predictor = Predictor(tiny_model, device="cpu")
    plain = _labels(predictor, started(predictor, video, {0: [1, 2]}))
    state = started(predictor, video, {0: [1, 2]})
    predictor.add_absence(state, 2, 1)
    predictor.propagate_backward(state)  # an absence is nothing to propagate backwards from
    assert not state.backward
    marked = _labels(predictor, state)
    for t in (0, 1):
        np.testing.assert_array_equal(marked[t], plain[t])
    assert (plain[2] == 1).any()
    assert not (marked[2] == 1).any()  # absent where the person said so
    assert (marked[2] == 2).any()


def test_an_absence_before_any_annotation_of_the_object_is_an_error(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=4, height=48, width=64, num_objects=2, seed=9)
    predictor = Predictor(tiny_model, device="cpu")
    state = started(predictor, video, {0: [1]})
    predictor.add_absence(state, 1, 2)
    with pytest.raises(ValueError, match=r"objects \[2\] are marked absent on frame 1 before any annotation"):
        _labels(predictor, state)
