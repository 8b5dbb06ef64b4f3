from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from savos.data.synthetic import iter_video, make_video
from savos.inference import PAPER_SCALES, EngineOptions, Predictor, probs_to_ids
from savos.model import SAVOS
from savos.quality import Quality


class CallLog:
    """Wraps a model's step methods to record what the engine sends through them."""

    def __init__(self, model: SAVOS) -> None:
        self.reference_batches: list[int] = []
        self.target_inputs: list[tuple[int, tuple[int, int], torch.Tensor]] = []
        encode_reference, encode_target = model.encode_reference, model.encode_target

        def reference(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            self.reference_batches.append(image.shape[0])
            return encode_reference(image, mask)

        def target(image: torch.Tensor, guidance: torch.Tensor):
            self.target_inputs.append((image.shape[0], tuple(image.shape[-2:]), guidance.clone()))
            return encode_target(image, guidance)

        model.encode_reference = reference  # type: ignore[method-assign]
        model.encode_target = target  # type: ignore[method-assign]


def square(height: int, width: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_all_objects_of_a_frame_go_in_one_batch_and_references_are_computed_once(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=6, num_objects=3, seed=1)
    predictor = Predictor(tiny_model, device="cpu")
    log = CallLog(predictor.model)  # the predictor's own copy of the model
    state = predictor.init_state(video.frames)
    for obj_id in (1, 2, 3):
        predictor.add_mask(state, 0, obj_id, video.masks[0] == obj_id)
    results = list(predictor.propagate(state))
    assert [frame_idx for frame_idx, _, _ in results] == list(range(6))
    assert log.reference_batches == [3]  # one reference pass, all three objects, at frame 0 only
    assert [batch for batch, _, _ in log.target_inputs] == [3] * 5  # frames 1..5, one batch of 3 each


def test_guidance_is_the_previous_frames_aggregated_probabilities(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=5, num_objects=2, seed=2)
    predictor = Predictor(tiny_model, device="cpu")
    log = CallLog(predictor.model)  # the predictor's own copy of the model
    state = predictor.init_state(video.frames)
    for obj_id in (1, 2):
        predictor.add_mask(state, 0, obj_id, video.masks[0] == obj_id)
    yielded = [probs.clone() for _, _, probs in predictor.propagate(state)]
    for frame_idx in range(1, 5):
        _, _, guidance = log.target_inputs[frame_idx - 1]
        torch.testing.assert_close(guidance[:, 0], yielded[frame_idx - 1])
    soft = log.target_inputs[-1][2]
    assert ((soft > 0.01) & (soft < 0.99)).any(), "guidance must be soft probabilities, not a binary mask"


def test_objects_join_at_their_first_annotation_and_annotations_win_on_their_frame(tiny_model: SAVOS) -> None:
    h, w = 64, 96
    video = make_video(num_frames=8, height=h, width=w, num_objects=1, seed=3)
    predictor = Predictor(tiny_model, device="cpu")
    state = predictor.init_state(video.frames)
    first, late, reset = square(h, w, 5, 5, 20), square(h, w, 30, 50, 25), square(h, w, 40, 10, 15)
    predictor.add_mask(state, 0, 1, first)
    predictor.add_mask(state, 3, 7, late)
    predictor.add_mask(state, 5, 1, reset)
    seen = {
        frame_idx: (obj_ids, probs_to_ids(obj_ids, probs)) for frame_idx, obj_ids, probs in predictor.propagate(state)
    }
    assert [seen[t][0] for t in range(8)] == [[1]] * 3 + [[1, 7]] * 5
    assert not (seen[2][1] == 7).any()
    np.testing.assert_array_equal(seen[0][1] == 1, first)
    np.testing.assert_array_equal(seen[3][1] == 7, late)  # object 1 cleared under the new annotation
    np.testing.assert_array_equal(seen[5][1] == 1, reset)
    assert not (seen[5][1][late & ~reset] == 1).any()


def test_an_annotation_resets_the_guidance_of_an_existing_object(tiny_model: SAVOS) -> None:
    h, w = 64, 96
    video = make_video(num_frames=4, height=h, width=w, num_objects=1, seed=4)
    predictor = Predictor(tiny_model, device="cpu")
    log = CallLog(predictor.model)  # the predictor's own copy of the model
    state = predictor.init_state(video.frames)
    predictor.add_mask(state, 0, 1, square(h, w, 0, 0, 30))
    reset = square(h, w, 30, 60, 20)
    predictor.add_mask(state, 2, 1, reset)
    list(predictor.propagate(state))
    # Frame 2 is annotated (no forward pass); frame 3's guidance is frame 2's aggregate of the reset mask.
    assert len(log.target_inputs) == 2
    guidance = log.target_inputs[1][2][0, 0]
    assert guidance[reset].min() > 0.99
    assert guidance[~reset].max() < 0.01


def test_memory_does_not_grow_with_video_length(tiny_model: SAVOS) -> None:
    """300 streamed frames: the state's retained tensors are the same size at frame 10 and at frame 299, and
    frames are pulled from the source only a few ahead of propagation."""
    h, w = 32, 48
    pulled = 0

    def frames() -> Iterator[np.ndarray]:
        nonlocal pulled
        for frame, _ in iter_video(300, h, w, num_objects=2, seed=5):
            pulled += 1
            yield frame

    first = next(iter_video(1, h, w, num_objects=2, seed=5))[1]
    predictor = Predictor(tiny_model, device="cpu", options=EngineOptions(prefetch_frames=2))
    state = predictor.init_state(frames())
    for obj_id in (1, 2):
        predictor.add_mask(state, 0, obj_id, first == obj_id)
    retained: dict[int, int] = {}
    ahead = 0
    for frame_idx, _, _ in predictor.propagate(state):
        retained[frame_idx] = state.retained_bytes()
        ahead = max(ahead, pulled - (frame_idx + 1))
    assert len(retained) == 300
    assert retained[10] == retained[150] == retained[299] > 0
    assert ahead <= 3


def test_multi_scale_runs_every_paper_scale_and_returns_full_size(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=3, height=64, width=96, num_objects=1, seed=6)
    predictor = Predictor(tiny_model, device="cpu", quality=Quality(scales=PAPER_SCALES))
    log = CallLog(predictor.model)  # the predictor's own copy of the model
    state = predictor.init_state(video.frames)
    predictor.add_mask(state, 0, 1, video.masks[0] == 1)
    shapes = [probs.shape for _, _, probs in predictor.propagate(state)]
    assert shapes == [(1, 64, 96)] * 3
    assert [size for _, size, _ in log.target_inputs[:3]] == [(32, 48), (48, 72), (64, 96)]
    assert log.reference_batches == [1, 1, 1]


def test_frames_over_the_pixel_budget_run_downscaled_and_come_back_full_size(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=2, height=256, width=384, num_objects=1, seed=6)
    predictor = Predictor(
        tiny_model, device="cpu", quality=Quality(scales=(0.5, 1.0)), options=EngineOptions(max_pixels=128 * 192)
    )
    log = CallLog(predictor.model)  # the predictor's own copy of the model
    state = predictor.init_state(video.frames)
    predictor.add_mask(state, 0, 1, video.masks[0] == 1)
    shapes = [probs.shape for _, _, probs in predictor.propagate(state)]
    assert shapes == [(1, 256, 384)] * 2
    assert [size for _, size, _ in log.target_inputs[:2]] == [(64, 96), (128, 192)]  # both scales, halved


def test_frames_with_a_longer_short_side_run_at_it_and_come_back_full_size(tiny_model: SAVOS) -> None:
    """``short_side`` brings an HD frame to the size the network was trained at before the scales apply, whatever
    its orientation; a frame within it runs at its own size."""
    for height, width, expected in ((128, 192, [(32, 48), (64, 96)]), (192, 128, [(48, 32), (96, 64)])):
        video = make_video(num_frames=2, height=height, width=width, num_objects=1, seed=6)
        predictor = Predictor(tiny_model, device="cpu", quality=Quality(scales=(0.5, 1.0), short_side=64))
        log = CallLog(predictor.model)
        state = predictor.init_state(video.frames)
        predictor.add_mask(state, 0, 1, video.masks[0] == 1)
        assert [probs.shape for _, _, probs in predictor.propagate(state)] == [(1, height, width)] * 2
        assert [size for _, size, _ in log.target_inputs[:2]] == expected
    small = make_video(num_frames=2, height=48, width=64, num_objects=1, seed=6)
    predictor = Predictor(tiny_model, device="cpu", quality=Quality(short_side=64))
    log = CallLog(predictor.model)
    state = predictor.init_state(small.frames)
    predictor.add_mask(state, 0, 1, small.masks[0] == 1)
    list(predictor.propagate(state))
    assert [size for _, size, _ in log.target_inputs[:1]] == [(48, 64)]  # never scaled up


def test_multi_scale_averages_single_scale_runs(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=2, height=64, width=96, num_objects=1, seed=7)

    def second_frame_raw(scales: tuple[float, ...]) -> torch.Tensor:
        predictor = Predictor(tiny_model, device="cpu", quality=Quality(scales=scales))
        state = predictor.init_state(video.frames)
        predictor.add_mask(state, 0, 1, video.masks[0] == 1)
        next(predictor.propagate(state))
        step = predictor._prepare(state, video.frames[1])
        with torch.inference_mode():
            (raw,) = predictor._predict_many([step])
        return raw

    separate = torch.stack([second_frame_raw((s,)) for s in (0.5, 1.0)]).mean(dim=0)
    torch.testing.assert_close(second_frame_raw((0.5, 1.0)), separate)


def test_frames_before_any_annotation_have_no_objects(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=3, num_objects=1, seed=8)
    predictor = Predictor(tiny_model, device="cpu")
    state = predictor.init_state(video.frames)
    predictor.add_mask(state, 2, 5, video.masks[2] == 1)
    results = [(t, ids, tuple(p.shape)) for t, ids, p in predictor.propagate(state)]
    assert results == [(0, [], (0, 64, 96)), (1, [], (0, 64, 96)), (2, [5], (1, 64, 96))]


def test_bad_annotations_are_refused(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=3, num_objects=1, seed=9)
    predictor = Predictor(tiny_model, device="cpu")
    state = predictor.init_state(video.frames)
    with pytest.raises(ValueError, match="is empty"):
        predictor.add_mask(state, 0, 1, np.zeros((64, 96), bool))
    with pytest.raises(ValueError, match="positive"):
        predictor.add_mask(state, 0, 0, video.masks[0] == 1)
    predictor.add_mask(state, 0, 1, np.ones((10, 10), bool))
    with pytest.raises(ValueError, match="mask for object 1 at frame 0 is 10x10, the frames are 96x64"):
        list(predictor.propagate(state))


def test_annotations_past_the_end_and_in_the_past_are_refused(tiny_model: SAVOS) -> None:
    video = make_video(num_frames=2, num_objects=1, seed=10)
    predictor = Predictor(tiny_model, device="cpu")
    state = predictor.init_state(video.frames)
    predictor.add_mask(state, 0, 1, video.masks[0] == 1)
    predictor.add_mask(state, 5, 2, video.masks[0] == 1)
    stream = predictor.propagate(state)
    next(stream)
    with pytest.raises(ValueError, match="already propagated"):
        predictor.add_mask(state, 0, 3, video.masks[0] == 1)
    with pytest.raises(ValueError, match=r"frames \[5\] lie past the last frame"):
        list(stream)


def test_a_frame_of_another_size_is_refused(tiny_model: SAVOS) -> None:
    frames = [np.zeros((64, 96, 3), np.uint8), np.zeros((64, 90, 3), np.uint8)]
    predictor = Predictor(tiny_model, device="cpu")
    state = predictor.init_state(frames)
    predictor.add_mask(state, 0, 1, square(64, 96, 0, 0, 10))
    with pytest.raises(ValueError, match="frame 1 is 90x64"):
        list(predictor.propagate(state))


def test_cuda_is_refused_clearly_when_absent(tiny_model: SAVOS) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        Predictor(tiny_model, device="cuda")


@pytest.mark.gpu
def test_cuda_bf16_matches_cpu_fp32(tiny_model: SAVOS) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    video = make_video(num_frames=4, num_objects=2, seed=11)

    def run(device: str) -> list[np.ndarray]:
        predictor = Predictor(tiny_model, device=device, precision="bf16" if device == "cuda" else "fp32")
        state = predictor.init_state(video.frames)
        for obj_id in (1, 2):
            predictor.add_mask(state, 0, obj_id, video.masks[0] == obj_id)
        return [probs.cpu().numpy() for _, _, probs in predictor.propagate(state)]

    for gpu, cpu in zip(run("cuda"), run("cpu"), strict=True):
        np.testing.assert_allclose(gpu, cpu, atol=0.05)


def test_annotation_wins_even_against_a_certain_prediction(tiny_model: SAVOS, monkeypatch) -> None:
    """A trained model can output p = 1 (softmax saturates); the annotation must still win on its frame."""
    h, w = 64, 96
    video = make_video(num_frames=3, height=h, width=w, num_objects=1, seed=12)
    predictor = Predictor(tiny_model, device="cpu")
    monkeypatch.setattr(predictor, "_predict_many", lambda steps: [torch.ones(len(s.tracked), h, w) for s in steps])
    state = predictor.init_state(video.frames)
    predictor.add_mask(state, 0, 1, square(h, w, 0, 0, 20))
    late = square(h, w, 30, 40, 20)
    predictor.add_mask(state, 2, 2, late)
    *_, (frame_idx, obj_ids, probs) = predictor.propagate(state)
    assert frame_idx == 2
    np.testing.assert_array_equal(probs_to_ids(obj_ids, probs) == 2, late)


def test_the_predictor_folds_batch_norms_in_its_own_copy(tiny_model: SAVOS) -> None:
    tiny_model.train()  # a model in training: the predictor must leave it as it is
    predictor = Predictor(tiny_model, device="cpu")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in predictor.model.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in tiny_model.modules()) == 48
    assert tiny_model.training
    unfolded = Predictor(tiny_model, device="cpu", options=EngineOptions(fold_batch_norms=False))
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in unfolded.model.modules()) == 48
