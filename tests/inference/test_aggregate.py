from __future__ import annotations

import numpy as np
import pytest
import torch

from savos.inference import probs_to_ids, soft_aggregate


def test_soft_aggregation_matches_a_hand_computed_pixel() -> None:
    # Two objects with p̂ = 0.8 and 0.5. Background p̂_0 = (1 - 0.8)(1 - 0.5) = 0.1.
    # Odds: 0.1/0.9 = 1/9, 0.8/0.2 = 4, 0.5/0.5 = 1; their sum is 46/9.
    # So p_0 = (1/9)/(46/9) = 1/46, p_1 = 4 * 9/46 = 36/46, p_2 = 9/46.
    result = soft_aggregate(torch.tensor([[0.8], [0.5]]))
    torch.testing.assert_close(result[:, 0], torch.tensor([1 / 46, 36 / 46, 9 / 46]))


def test_single_object_is_sharpened_as_the_equation_says() -> None:
    # One object p̂ = 0.75: background 0.25; odds 1/3 and 3, so p_1 = 3 / (3 + 1/3) = 0.9.
    result = soft_aggregate(torch.tensor([0.75]))
    torch.testing.assert_close(result, torch.tensor([0.1, 0.9]))


def test_certain_probabilities_are_clamped_not_divided_by_zero() -> None:
    result = soft_aggregate(torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    assert torch.isfinite(result).all()
    torch.testing.assert_close(result.sum(dim=0), torch.ones(3))
    assert result[1, 2] > 0.99  # the certain object wins where it alone is certain
    assert result[0, 1] > 0.99  # background wins where no object is present


def test_aggregated_probabilities_sum_to_one() -> None:
    torch.manual_seed(0)
    result = soft_aggregate(torch.rand(5, 7, 9))
    assert result.shape == (6, 7, 9)
    torch.testing.assert_close(result.sum(dim=0), torch.ones(7, 9))


def test_ids_take_the_most_probable_label_including_background() -> None:
    probs = torch.tensor([[[0.6, 0.1, 0.3]], [[0.3, 0.7, 0.3]]])  # objects 4 and 9; background 0.1, 0.2, 0.4
    assert probs_to_ids([4, 9], probs).tolist() == [[4, 9, 0]]


def test_probs_to_ids_is_the_argmax_over_background_and_objects_ties_to_the_earlier() -> None:
    torch.manual_seed(0)
    probs = soft_aggregate(torch.rand(4, 30, 40))[1:]
    probs[:, 0, 0] = torch.tensor([0.3, 0.3, 0.2, 0.2])  # a tie between ids 3 and 5 (background 0.0)
    probs[:, 1, 0] = torch.tensor([0.25, 0.25, 0.25, 0.0])  # ties with the background (0.25)
    obj_ids = [3, 5, 8, 13]
    background = (1 - probs.sum(0, keepdim=True)).clamp_min(0)
    reference = np.asarray([0, *obj_ids])[torch.cat([background, probs]).argmax(0).numpy()]
    ids = probs_to_ids(obj_ids, probs)
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, reference)
    assert ids[0, 0] == 3
    assert ids[1, 0] == 0


def test_labels_and_scores_give_each_object_its_mean_probability_over_its_pixels() -> None:
    from savos.inference.aggregate import labels_and_scores

    # Object 4 wins pixels 0 and 1, object 9 pixel 2, object 7 none (background wins pixel 3).
    probs = torch.tensor([[[0.9, 0.7, 0.1, 0.1]], [[0.05, 0.2, 0.8, 0.1]], [[0.0, 0.0, 0.0, 0.2]]])
    labels, scores = labels_and_scores([4, 9, 7], probs)
    np.testing.assert_array_equal(labels, probs_to_ids([4, 9, 7], probs))
    assert labels.tolist() == [[4, 4, 9, 0]]
    np.testing.assert_allclose(scores, [0.8, 0.8, 0.0], atol=1e-6)
    assert labels_and_scores([], torch.zeros(0, 1, 4))[1].shape == (0,)


@pytest.mark.parametrize("obj_ids", [[1, 2, 3, 4], [3, 5, 8, 13]])
def test_the_fused_labels_and_scores_of_the_gpu_equal_the_per_object_ones(obj_ids: list[int]) -> None:
    """One argmax and one masked reduction (the GPU's path) against the running maximum and a score per object
    (the CPU's), ties included, on the CPU."""
    from savos.inference.aggregate import device_labels_and_scores

    torch.manual_seed(1)
    probs = soft_aggregate(torch.rand(4, 30, 40))[1:]
    probs[:, 0, 0] = torch.tensor([0.3, 0.3, 0.2, 0.2])  # a tie between the first two objects
    probs[:, 1, 0] = torch.tensor([0.25, 0.25, 0.25, 0.0])  # ties with the background
    labels, scores = device_labels_and_scores(obj_ids, probs, fused=True)
    want_labels, want_scores = device_labels_and_scores(obj_ids, probs, fused=False)
    assert labels.dtype == want_labels.dtype == torch.int32
    torch.testing.assert_close(labels, want_labels, rtol=0, atol=0)
    torch.testing.assert_close(scores, want_scores)
    assert set(np.unique(labels.numpy())) == {0, *obj_ids}
