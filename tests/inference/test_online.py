"""Online adaptation: a per-video decoder, trained on the annotated frame, that leaks into nothing else."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from savos.data.synthetic import SyntheticVideo, make_video
from savos.inference import FrameResult, Predictor, VideoEnd, VideoState
from savos.model import SAVOS
from savos.quality import OnlineAdaptation, Quality
from savos.train.online import adapt_decoder, crop_for

# Few small steps at a high rate: a CPU test that still moves the weights far enough to change the masks.
QUICK = OnlineAdaptation(steps=3, lr=1e-3, crop=(32, 64), batch_size=1)


def video(seed: int, objects: int = 2) -> SyntheticVideo:
    return make_video(num_frames=4, height=48, width=64, num_objects=objects, seed=seed)


def started(predictor: Predictor, clip: SyntheticVideo) -> VideoState:
    state = predictor.init_state(clip.frames)
    for obj_id in np.unique(clip.masks[0]):
        if obj_id:
            predictor.add_mask(state, 0, int(obj_id), clip.masks[0] == obj_id)
    return state


def masks(predictor: Predictor, clip: SyntheticVideo) -> list[torch.Tensor]:
    return [probs.clone() for _, _, probs in predictor.propagate(started(predictor, clip))]


def assert_same(got: list[torch.Tensor], expected: list[torch.Tensor], atol: float = 1e-6) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=atol, rtol=0)


def largest_difference(got: list[torch.Tensor], other: list[torch.Tensor]) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(got, other, strict=True))


def test_adaptation_changes_the_masks_and_leaves_the_base_weights_alone(tiny_model: SAVOS) -> None:
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    plain = Predictor(tiny_model, device="cpu", precision="fp32")
    adapted = Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=QUICK))
    own = {k: v.clone() for k, v in adapted.model.state_dict().items()}
    clip = video(1)
    state = started(adapted, clip)
    with_adaptation = [p.clone() for _, _, p in adapted.propagate(state)]

    assert state.decoder is not None
    moved = [
        float((a - b).detach().abs().max())
        for a, b in zip(state.decoder.parameters(), adapted.model.decoder().parameters(), strict=True)
    ]
    assert max(moved) > 1e-4  # the video's decoder was trained...
    for key, value in tiny_model.state_dict().items():  # ...and neither the caller's model...
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)
    for key, value in adapted.model.state_dict().items():  # ...nor the predictor's moved
        torch.testing.assert_close(value, own[key], atol=0, rtol=0)
    assert largest_difference(with_adaptation[1:], masks(plain, clip)[1:]) > 1e-3
    assert_same(with_adaptation[:1], masks(plain, clip)[:1])  # the annotated frame is the annotation


def test_videos_give_the_same_masks_alone_and_in_either_order(tiny_model: SAVOS) -> None:
    first, second = video(1), video(2, objects=1)
    alone = [
        masks(Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=QUICK)), c)
        for c in (first, second)
    ]
    shared = Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=QUICK))
    torch.manual_seed(123)  # the global generator plays no part
    in_order = [masks(shared, first), masks(shared, second)]
    reversed_order = [masks(shared, second), masks(shared, first)]
    assert_same(in_order[0], alone[0])
    assert_same(in_order[1], alone[1])
    assert_same(reversed_order[1], alone[0])
    assert_same(reversed_order[0], alone[1])


def test_the_seed_decides_the_adapted_decoder(tiny_model: SAVOS) -> None:
    clip = video(3)
    again = [
        masks(Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=QUICK)), clip)
        for _ in range(2)
    ]
    assert_same(again[0], again[1], atol=0)
    other_seed = OnlineAdaptation(steps=3, lr=1e-3, crop=(32, 64), batch_size=1, seed=1)
    other = masks(Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=other_seed)), clip)
    assert largest_difference(other[1:], again[0][1:]) > 1e-4


def test_lockstep_runs_each_video_through_its_own_decoder(tiny_model: SAVOS) -> None:
    """Four videos in one network batch (one encoder pass, a decoder per video) give what each gives alone."""
    clips = {name: video(seed, objects=1 + seed % 3) for name, seed in zip("abcd", range(4, 8), strict=True)}
    single = Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=QUICK))
    expected = {name: masks(single, clip) for name, clip in clips.items()}
    batched = Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=QUICK))
    events = list(batched.propagate_many(((n, started(batched, c)) for n, c in clips.items()), max_active=4))
    assert [e for e in events if isinstance(e, VideoEnd)] == [VideoEnd(n) for n in clips]
    for name in clips:
        got = [e.probs for e in events if isinstance(e, FrameResult) and e.key == name]
        assert_same(got, expected[name], atol=1e-5)


def test_flip_averages_the_mirrored_view(tiny_model: SAVOS) -> None:
    """Mirroring the video and its masks mirrors the masks a flipping predictor gives (it sees both views)."""
    clip = video(8)
    mirrored = SyntheticVideo(
        frames=np.ascontiguousarray(clip.frames[:, :, ::-1]), masks=np.ascontiguousarray(clip.masks[:, :, ::-1])
    )
    predictor = Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(flip=True))
    straight, flipped = masks(predictor, clip), masks(predictor, mirrored)
    assert_same([p.flip(-1) for p in flipped], straight, atol=1e-5)
    plain = masks(Predictor(tiny_model, device="cpu", precision="fp32"), clip)
    assert largest_difference(straight[1:], plain[1:]) > 1e-4


def test_adapting_twice_from_the_same_frame_is_reproducible_outside_the_engine(tiny_model: SAVOS) -> None:
    clip = video(9)
    runs = [adapt_decoder(tiny_model, tiny_model.decoder(), [(clip.frames[0], clip.masks[0])], QUICK) for _ in range(2)]
    for a, b in zip(runs[0].parameters(), runs[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        assert not a.requires_grad


@pytest.mark.parametrize(
    ("frame", "crop", "expected"),
    [((480, 854), (384, 640), (384, 640)), ((854, 480), (384, 640), (640, 384)), ((240, 427), (384, 640), (224, 384))],
)
def test_the_crop_turns_with_the_frame_and_fits_inside_it(
    frame: tuple[int, int], crop: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert crop_for(frame, crop) == expected


@pytest.mark.parametrize(
    "bad",
    [{"steps": 0}, {"lr": 0.0}, {"lr": float("nan")}, {"crop": (16, 64)}, {"mix": (("video", 1.0),)}],
)
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="online adaptation"):
        OnlineAdaptation(**bad)  # type: ignore[arg-type]


def fixed_at_2(
    predictor: Predictor, clip: SyntheticVideo, objects: list[int], absent: list[int] | None = None
) -> VideoState:
    """``clip`` annotated on frame 0, and on frame 2 the truth of ``objects`` (and the absence of ``absent``)."""
    state = started(predictor, clip)
    for obj_id in objects:
        predictor.add_mask(state, 2, obj_id, clip.masks[2] == obj_id)
    for obj_id in absent or []:
        predictor.add_absence(state, 2, obj_id)
    return state


def run(predictor: Predictor, state: VideoState) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every frame's probabilities, and the video's decoder weights at the end."""
    probs = [p.clone() for _, _, p in predictor.propagate(state)]
    assert state.decoder is not None
    return probs, [p.detach().clone() for p in state.decoder.parameters()]


def test_a_later_frame_annotating_every_object_is_adapted_on_from_there(tiny_model: SAVOS) -> None:
    """A person's fix of every object at frame k fine-tunes the video's decoder again, on frame 0 and k, for the
    frames after k; the frames before keep their masks. A fix of one object among two adapts nothing (the other's
    pixels there are unknown); an absence counts as the fix of its object."""
    predictor = Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=QUICK))
    clip = video(3)
    plain, first_decoder = run(predictor, started(predictor, clip))
    fixed, fixed_decoder = run(predictor, fixed_at_2(predictor, clip, [1, 2]))

    assert_same(fixed[:2], plain[:2], atol=0)
    assert largest_difference(fixed_decoder, first_decoder) > 1e-4
    again, again_decoder = run(predictor, fixed_at_2(predictor, clip, [1, 2]))
    assert_same(again, fixed, atol=0)
    assert_same(again_decoder, fixed_decoder, atol=0)
    assert_same(run(predictor, fixed_at_2(predictor, clip, [1]))[1], first_decoder, atol=0)
    with_absence = run(predictor, fixed_at_2(predictor, clip, [1], absent=[2]))[1]
    assert largest_difference(with_absence, first_decoder) > 1e-4


def test_a_fix_adapts_the_same_in_lockstep_as_alone(tiny_model: SAVOS) -> None:
    predictor = Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=QUICK))
    clips = {name: video(seed) for name, seed in (("a", 4), ("b", 5), ("c", 6))}
    expected = {name: run(predictor, fixed_at_2(predictor, clip, [1, 2]))[0] for name, clip in clips.items()}
    states = ((name, fixed_at_2(predictor, clip, [1, 2])) for name, clip in clips.items())
    events = list(predictor.propagate_many(states, max_active=3))
    for name in clips:
        got = [e.probs for e in events if isinstance(e, FrameResult) and e.key == name]
        assert_same(got, expected[name], atol=1e-5)
