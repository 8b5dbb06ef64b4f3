"""Several videos advanced in lock-step by one predictor: same results as one at a time, joins and leaves."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from savos.data.synthetic import SyntheticVideo, make_video
from savos.inference import EngineOptions, FrameResult, Predictor, VideoEnd, VideoState
from savos.inference.aggregate import labels_and_scores
from savos.model import SAVOS
from savos.quality import DEFAULT_QUALITY, quality_preset

from .test_engine import CallLog


def started(predictor: Predictor, video: SyntheticVideo, annotate: dict[int, list[int]]) -> VideoState:
    """A state with the ground-truth masks of ``annotate = {frame: [obj ids]}`` added."""
    state = predictor.init_state(video.frames)
    for frame_idx, obj_ids in annotate.items():
        for obj_id in obj_ids:
            predictor.add_mask(state, frame_idx, obj_id, video.masks[frame_idx] == obj_id)
    return state


VIDEOS = {  # name: (frames, height, width, objects, annotations)
    "a": (7, 48, 64, 2, {0: [1, 2]}),
    "b": (3, 48, 64, 1, {0: [1]}),
    "c": (5, 40, 56, 3, {0: [1, 2], 2: [3]}),  # another size; object 3 joins at frame 2
    "d": (4, 48, 64, 1, {0: [1]}),
}


def make(name: str) -> SyntheticVideo:
    frames, height, width, objects, _ = VIDEOS[name]
    return make_video(num_frames=frames, height=height, width=width, num_objects=objects, seed=ord(name))


def one_at_a_time(model: SAVOS) -> dict[str, list[tuple[int, list[int], torch.Tensor]]]:
    predictor = Predictor(model, device="cpu")
    return {
        name: [(i, ids, p.clone()) for i, ids, p in predictor.propagate(started(predictor, make(name), spec[4]))]
        for name, spec in VIDEOS.items()
    }


def test_lockstep_equals_one_video_at_a_time_and_videos_join_as_others_end(tiny_model: SAVOS) -> None:
    expected = one_at_a_time(tiny_model)
    predictor = Predictor(tiny_model, device="cpu")
    log = CallLog(predictor.model)
    pulled: list[str] = []

    def videos() -> Iterator[tuple[str, VideoState]]:
        for name, spec in VIDEOS.items():
            pulled.append(name)
            yield name, started(predictor, make(name), spec[4])

    events = []
    for event in predictor.propagate_many(videos(), max_active=2):
        events.append(event)
        if isinstance(event, VideoEnd):
            # A new video is only read once one has ended: at most two are ever in flight.
            assert len(pulled) - sum(isinstance(e, VideoEnd) for e in events) <= 2

    for name in VIDEOS:
        frames = [e for e in events if isinstance(e, FrameResult) and e.key == name]
        ends = [e for e in events if isinstance(e, VideoEnd) and e.key == name]
        assert ends == [VideoEnd(name, None)]
        assert events.index(ends[0]) > max(events.index(f) for f in frames)  # the end comes after the frames
        assert [f.frame_idx for f in frames] == [i for i, _, _ in expected[name]]
        for got, (_, ids, probs) in zip(frames, expected[name], strict=True):
            assert got.obj_ids == ids
            assert torch.allclose(got.probs, probs, atol=1e-5), name

    # Network batches: a and b together (2 + 1 objects) until b ends after its frame 2; then c joins a.
    # c (40x56) and a (48x64) differ in size, so they go through the network as two batches in one step.
    batches = [(n, size) for n, size, _ in log.target_inputs]
    assert batches[:2] == [(3, (48, 64)), (3, (48, 64))]  # frames 1 and 2 of a and b
    assert (2, (40, 56)) in batches
    assert (3, (40, 56)) in batches


def test_a_bad_video_ends_alone_and_the_others_finish(tiny_model: SAVOS) -> None:
    expected = one_at_a_time(tiny_model)
    predictor = Predictor(tiny_model, device="cpu")

    def broken_frames() -> Iterator[np.ndarray]:
        video = make("a")
        yield from video.frames[:2]
        raise OSError("frame 2 is truncated")

    def resized_frames() -> Iterator[np.ndarray]:
        video = make("a")
        yield from video.frames[:3]
        yield np.zeros((10, 10, 3), np.uint8)

    bad_read = predictor.init_state(broken_frames())
    predictor.add_mask(bad_read, 0, 1, make("a").masks[0] == 1)
    bad_size = predictor.init_state(resized_frames())
    predictor.add_mask(bad_size, 0, 1, make("a").masks[0] == 1)
    late = started(predictor, make("b"), {0: [1]})
    predictor.add_mask(late, 9, 1, np.ones((48, 64), bool))  # past the end of a 3-frame video
    videos = [
        ("read", bad_read),
        ("b", started(predictor, make("b"), VIDEOS["b"][4])),
        ("size", bad_size),
        ("late", late),
        ("d", started(predictor, make("d"), VIDEOS["d"][4])),
    ]
    events = list(predictor.propagate_many(videos, max_active=3))

    ends = {e.key: e.error for e in events if isinstance(e, VideoEnd)}
    assert isinstance(ends["read"], OSError)
    assert isinstance(ends["size"], ValueError)
    assert "10x10" in str(ends["size"])
    assert isinstance(ends["late"], ValueError)
    assert "past the last frame" in str(ends["late"])
    assert ends["b"] is None
    assert ends["d"] is None
    assert [e.frame_idx for e in events if isinstance(e, FrameResult) and e.key == "read"] == [0, 1]
    for name in ("b", "d"):
        got = [e.probs for e in events if isinstance(e, FrameResult) and e.key == name]
        assert len(got) == len(expected[name])
        assert all(torch.allclose(g, p, atol=1e-5) for g, (_, _, p) in zip(got, expected[name], strict=True))


def test_a_source_with_no_video_ready_yet_lets_the_active_ones_go_on(tiny_model: SAVOS) -> None:
    """A source fed over time (an actor's calls) yields None while nothing new is handed in: the running video
    goes on a frame, and the source is asked again; a video handed in later joins then."""
    expected = one_at_a_time(tiny_model)
    predictor = Predictor(tiny_model, device="cpu")
    asked: list[int] = []  # frames of a produced when the source was asked

    def source() -> Iterator[tuple[str, VideoState] | None]:
        yield "a", started(predictor, make("a"), VIDEOS["a"][4])
        for _ in range(3):
            asked.append(sum(isinstance(e, FrameResult) for e in events))
            yield None
        yield "b", started(predictor, make("b"), VIDEOS["b"][4])

    events: list[FrameResult[str] | VideoEnd[str]] = []
    for event in predictor.propagate_many(source(), max_active=2):
        events.append(event)
    # asked before each of a's first three steps while a ran alone; a step's results are handed out once the
    # next step is queued, so the source saw 0, 0 and 1 of them
    assert asked == [0, 0, 1]
    frames = [(e.key, e.frame_idx) for e in events if isinstance(e, FrameResult)]
    assert frames[:3] == [("a", 0), ("a", 1), ("a", 2)]
    assert set(frames[3:5]) == {("a", 3), ("b", 0)}  # b, handed in then, joined a's very next step
    for name in ("a", "b"):
        got = [e.probs for e in events if isinstance(e, FrameResult) and e.key == name]
        assert all(torch.allclose(g, p, atol=1e-5) for g, (_, _, p) in zip(got, expected[name], strict=True))
        assert len(got) == len(expected[name])


def test_max_active_must_be_positive(tiny_model: SAVOS) -> None:
    with pytest.raises(ValueError, match="max_active"):
        list(Predictor(tiny_model, device="cpu").propagate_many([], max_active=0))


@pytest.mark.gpu
def test_cuda_lockstep_with_every_option_matches_cpu_fp32(tiny_model: SAVOS) -> None:
    """bf16, channels_last, pinned uploads, CUDA graphs, results read back on a side stream, frames already on the
    GPU for one video."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    expected = one_at_a_time(tiny_model)
    predictor = Predictor(tiny_model, device="cuda", precision="bf16", options=EngineOptions(channels_last=True))
    assert predictor.channels_last
    assert predictor.pin_memory
    assert predictor.cuda_graphs
    states = []
    for name, spec in VIDEOS.items():
        video = make(name)
        frames = [torch.from_numpy(f).cuda() for f in video.frames] if name == "a" else video.frames
        state = predictor.init_state(frames)
        for frame_idx, obj_ids in spec[4].items():
            for obj_id in obj_ids:
                predictor.add_mask(state, frame_idx, obj_id, video.masks[frame_idx] == obj_id)
        states.append((name, state))
    events = list(predictor.propagate_many(states, max_active=3))
    assert all(e.error is None for e in events if isinstance(e, VideoEnd))
    for event in events:  # read back on the side stream: what the plain copy gives
        if isinstance(event, FrameResult):
            labels, scores = event.labels_and_scores()
            want_labels, want_scores = labels_and_scores(event.obj_ids, event.probs)
            np.testing.assert_array_equal(labels, want_labels)
            np.testing.assert_array_equal(scores, want_scores)
    for name in VIDEOS:
        got = [e.probs.cpu() for e in events if isinstance(e, FrameResult) and e.key == name]
        assert len(got) == len(expected[name])
        for g, (_, _, p) in zip(got, expected[name], strict=True):
            np.testing.assert_allclose(g.numpy(), p.numpy(), atol=0.05)


@pytest.mark.gpu
def test_cuda_lockstep_never_makes_the_host_wait_for_the_gpu(tiny_model: SAVOS) -> None:
    """Once warm, nothing in the lock-step (joins, objects annotated later, results read back, the default
    preset's search window) synchronises the host with the GPU's stream: each such wait would idle the GPU while
    the host prepares the next step."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    predictor = Predictor(tiny_model, device="cuda", precision="bf16", quality=quality_preset(DEFAULT_QUALITY))
    assert predictor.search_radius is not None

    def run() -> int:
        states = [(name, started(predictor, make(name), spec[4])) for name, spec in VIDEOS.items()]
        frames = 0
        for event in predictor.propagate_many(states, max_active=3):
            if isinstance(event, FrameResult):
                event.labels_and_scores()  # waits for its own copy (an event), not for the stream
                frames += 1
        return frames

    run()  # graphs captured, kernels chosen, pinned memory pooled
    torch.cuda.set_sync_debug_mode("error")
    try:
        frames = run()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert frames == sum(spec[0] for spec in VIDEOS.values())


@pytest.mark.gpu
def test_cuda_compiled_graphs_match_cpu_fp32(tiny_model: SAVOS) -> None:
    """torch.compile with static shapes inside the CUDA graphs (one compilation per batch bucket)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    expected = one_at_a_time(tiny_model)
    predictor = Predictor(tiny_model, device="cuda", precision="bf16", options=EngineOptions(compile=True))
    assert predictor.cuda_graphs
    for name in ("a", "b"):
        got = [e for e in predictor.propagate_many([(name, started(predictor, make(name), VIDEOS[name][4]))])]
        probs = [e.probs.cpu() for e in got if isinstance(e, FrameResult)]
        assert got[-1] == VideoEnd(name)
        assert len(probs) == len(expected[name])
        for g, (_, _, p) in zip(probs, expected[name], strict=True):
            np.testing.assert_allclose(g.numpy(), p.numpy(), atol=0.05)


def test_videos_may_share_a_key(tiny_model: SAVOS) -> None:
    """Keys are the caller's labels, not identities: two videos under one key both run to their end."""
    predictor = Predictor(tiny_model, device="cpu")
    videos = [("same", started(predictor, make(name), VIDEOS[name][4])) for name in ("a", "b")]
    events = list(predictor.propagate_many(videos, max_active=2))
    assert sum(isinstance(e, FrameResult) for e in events) == VIDEOS["a"][0] + VIDEOS["b"][0]
    assert [e for e in events if isinstance(e, VideoEnd)] == [VideoEnd("same"), VideoEnd("same")]
