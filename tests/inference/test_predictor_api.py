"""The predictor's per-video API in the shape users know from SAM 2: a predictor in one call, objects removed,
a state reset, propagation from a start frame."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from savos.data.synthetic import make_video
from savos.inference import EngineOptions, Predictor, VideoState, probs_to_ids
from savos.inference.passes import CPU_PASS_PIXELS
from savos.model import SAVOS
from savos.quality import Quality


@pytest.fixture
def predictor(tiny_model: SAVOS) -> Predictor:
    return Predictor(tiny_model, device="cpu", precision="fp32")


def _run(
    predictor: Predictor, state: VideoState, start: int | None = None
) -> dict[int, tuple[list[int], torch.Tensor]]:
    """``{frame_idx: (obj_ids, probs)}`` of a whole propagation."""
    return {frame_idx: (obj_ids, probs.clone()) for frame_idx, obj_ids, probs in predictor.propagate(state, start)}


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for frame_idx in a:
        assert a[frame_idx][0] == b[frame_idx][0], frame_idx
        torch.testing.assert_close(a[frame_idx][1], b[frame_idx][1], rtol=0, atol=0)


def test_from_pretrained_gives_the_shipped_model_in_one_call(checkpoint: Path) -> None:
    predictor = Predictor.from_pretrained(device="cpu", quality="balanced")
    assert predictor.scales == (0.5, 0.75, 1.0)
    assert predictor.checkpoint_meta["checkpoint_id"] == "savos-lite0-davis16-v3"
    assert predictor.checkpoint_meta["licence"] == "CC BY-NC 4.0"
    own = Predictor.from_pretrained(
        checkpoint, device="cpu", precision="fp32", quality=Quality(flip=True), options=EngineOptions(max_pixels=4096)
    )
    assert own.checkpoint_meta["checkpoint_id"] == "tiny"
    assert (own.scales, own.flip, own.max_pixels) == ((1.0,), True, 4096)
    assert own.dtype == torch.float32


def test_engine_options_decide_auto_for_the_device() -> None:
    cpu = EngineOptions().for_device(torch.device("cpu"), "efficientnet_lite0")
    assert (cpu.channels_last, cpu.pin_memory, cpu.cuda_graphs) == (True, False, False)
    assert cpu.max_pass_pixels == CPU_PASS_PIXELS
    cuda = EngineOptions().for_device(torch.device("cuda"), "efficientnet_lite0")
    assert (cuda.channels_last, cuda.pin_memory, cuda.cuda_graphs) == (False, True, True)
    assert EngineOptions().for_device(torch.device("cuda"), "resnet50").channels_last
    chosen = EngineOptions(channels_last=False, pin_memory=True, max_pass_pixels=1000)
    assert chosen.for_device(torch.device("cpu"), "resnet50").channels_last is False
    assert chosen.for_device(torch.device("cpu"), "resnet50").max_pass_pixels == 1000
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        EngineOptions(cuda_graphs=True).for_device(torch.device("cpu"), "resnet50")
    with pytest.raises(ValueError, match="max_pass_pixels"):
        EngineOptions(max_pass_pixels=0)


def test_an_object_removed_before_propagation_leaves_the_others_as_if_it_never_was(predictor: Predictor) -> None:
    video = make_video(5, num_objects=3, seed=4)
    alone = predictor.init_state(video.frames)
    with_it = predictor.init_state(video.frames)
    for obj_id in (1, 2, 3):
        mask = video.masks[0] == obj_id
        if obj_id != 2:
            predictor.add_mask(alone, 0, obj_id, mask)
        predictor.add_mask(with_it, 0, obj_id, mask)
    predictor.remove_object(with_it, 2)
    _same(_run(predictor, with_it), _run(predictor, alone))


def test_an_object_removed_mid_video_is_gone_from_the_next_frame(predictor: Predictor) -> None:
    video = make_video(5, num_objects=2, seed=5)
    state = predictor.init_state(video.frames)
    for obj_id in (1, 2):
        predictor.add_mask(state, 0, obj_id, video.masks[0] == obj_id)
    predictor.add_mask(state, 3, 2, video.masks[3] == 2)  # an annotation ahead goes with it
    frames = predictor.propagate(state)
    for _ in range(2):
        _, obj_ids, _ = next(frames)
        assert obj_ids == [1, 2]
    predictor.remove_object(state, 2)
    rest = list(frames)
    assert [frame_idx for frame_idx, _, _ in rest] == [2, 3, 4]
    assert all(obj_ids == [1] and probs.shape[0] == 1 for _, obj_ids, probs in rest)
    assert not (probs_to_ids([1], rest[-1][2]) == 2).any()
    with pytest.raises(ValueError, match="object 7 is neither tracked nor annotated"):
        predictor.remove_object(state, 7)


def test_a_reset_state_starts_the_video_again(predictor: Predictor) -> None:
    video = make_video(4, num_objects=2, seed=6)
    frames = list(video.frames)
    fresh = predictor.init_state(frames)
    predictor.add_mask(fresh, 0, 1, video.masks[0] == 1)
    expected = _run(predictor, fresh)

    state = predictor.init_state(frames)
    predictor.add_mask(state, 0, 2, video.masks[0] == 2)
    list(predictor.propagate(state))
    predictor.reset_state(state)
    assert state.obj_ids == []
    assert state.next_frame_idx == 0
    predictor.add_mask(state, 0, 1, video.masks[0] == 1)
    _same(_run(predictor, state), expected)

    one_pass = predictor.init_state(iter(frames))
    with pytest.raises(ValueError, match="one-pass iterator"):
        predictor.reset_state(one_pass)


def test_propagation_from_a_start_frame(predictor: Predictor) -> None:
    video = make_video(6, num_objects=2, seed=7)
    state = predictor.init_state(video.frames)
    for obj_id in (1, 2):
        predictor.add_mask(state, 2, obj_id, video.masks[2] == obj_id)
    started = _run(predictor, state, start=2)
    clipped = predictor.init_state(video.frames[2:])
    for obj_id in (1, 2):
        predictor.add_mask(clipped, 0, obj_id, video.masks[2] == obj_id)
    _same(started, {frame_idx + 2: result for frame_idx, result in _run(predictor, clipped).items()})

    early = predictor.init_state(video.frames)
    predictor.add_mask(early, 1, 1, video.masks[1] == 1)
    with pytest.raises(ValueError, match="annotate at or after the start frame"):
        next(predictor.propagate(early, start_frame_idx=3))
