"""The search window: each object's probability is kept near its previous mask, on the device."""

from __future__ import annotations

import numpy as np
import torch

from savos.data.synthetic import make_video
from savos.inference import Predictor
from savos.inference.search import CELL, within_reach
from savos.model import SAVOS
from savos.quality import Quality


def test_probability_far_from_the_previous_mask_is_dropped_and_near_it_kept() -> None:
    previous = torch.zeros(2, 96, 160)
    previous[0, 40:56, 20:36] = 0.9  # object 1 was on the left
    probs = torch.full((2, 96, 160), 0.8)
    kept = within_reach(probs, previous, radius=0.25)  # 24 pixels of a 96-pixel short side
    assert torch.all(kept[0, 40:56, 20:36] == 0.8)  # where it was
    assert torch.all(kept[0, 40:56, 36 + 24 - 1] == 0.8)  # as far as the radius reaches
    assert torch.all(kept[0, :, 36 + 24 + 2 * CELL :] == 0)  # beyond it, with the grid's slack
    assert torch.equal(kept[1], probs[1])  # object 2 had no pixel: searched for everywhere


def test_a_faint_previous_mask_counts_as_absent() -> None:
    previous = torch.full((1, 64, 64), 0.4)
    probs = torch.rand(1, 64, 64)
    assert torch.equal(within_reach(probs, previous, radius=0.1), probs)


def test_the_predictor_keeps_each_object_within_reach_of_its_last_mask(tiny_model: SAVOS) -> None:
    video = make_video(6, 64, 96, 2, seed=3)
    radius = 0.25
    predictor = Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(search_radius=radius))
    state = predictor.init_state(list(video.frames))
    for oid in (1, 2):
        predictor.add_mask(state, 0, oid, video.masks[0] == oid)
    reach = int(np.ceil(radius * 64 / CELL)) * CELL + CELL  # the window, rounded out to the grid
    previous = None
    for _, obj_ids, probs in predictor.propagate(state):
        if previous is not None:
            for row in range(len(obj_ids)):
                ys, xs = np.nonzero(previous[row] > 0.5)
                if len(ys):
                    far = np.ones((64, 96), dtype=bool)
                    top, left = max(0, ys.min() - reach), max(0, xs.min() - reach)
                    far[top : ys.max() + reach + 1, left : xs.max() + reach + 1] = False
                    assert probs[row].numpy()[far].max(initial=0) < 1e-6
        previous = probs.numpy().copy()
    assert predictor.search_radius == radius
