"""CUDA graph replay of the network step: padded buckets, and the same logits as the eager step."""

from __future__ import annotations

import pytest
import torch

from savos.inference import EngineOptions, Predictor
from savos.inference.graphs import GraphedStep, bucket
from savos.model import SAVOS


def test_buckets_pad_at_most_a_third_of_a_batch() -> None:
    sizes = [bucket(rows) for rows in range(1, 200)]
    assert sorted(set(sizes))[:10] == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
    assert all(rows <= size <= 1.5 * rows for rows, size in zip(range(1, 200), sizes, strict=True))
    with pytest.raises(ValueError, match="at least one row"):
        bucket(0)


def test_cuda_graphs_are_refused_off_cuda(tiny_model: SAVOS) -> None:
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        Predictor(tiny_model, device="cpu", options=EngineOptions(cuda_graphs=True))
    assert not Predictor(tiny_model, device="cpu").cuda_graphs


@pytest.mark.gpu
@torch.inference_mode()
def test_graph_replay_matches_the_eager_step_as_batches_grow_shrink_and_graphs_are_evicted(
    tiny_model: SAVOS,
) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    predictor = Predictor(tiny_model, device="cuda", precision="fp32", options=EngineOptions(cuda_graphs=False))
    eager = predictor._target_logits
    graphed = GraphedStep(eager, max_graphs=2)
    generator = torch.Generator(device="cuda").manual_seed(0)
    image = torch.rand(8, 3, 64, 96, device="cuda", generator=generator)
    guidance = torch.rand(8, 1, 64, 96, device="cuda", generator=generator)
    reference = predictor.model.encode_reference(image, guidance)
    for rows in (3, 1, 3, 5, 8, 2, 3):  # buckets 3, 1, 3, 6, 8, 2, 3: captures, reuses and evictions
        got = graphed(reference[:rows], image[:rows], guidance[:rows]).clone()
        want = eager(reference[:rows], image[:rows], guidance[:rows])
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert graphed.captures == 6  # 3, 1, 6, 8, 2, then 3 again after its eviction
    assert len(graphed._graphs) == 2
