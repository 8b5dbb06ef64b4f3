"""A dense CRF on each output frame of ``savos predict``, as a probe of boundary refinement (not in the engine).

The network's soft-aggregated probabilities (background = 1 - their sum) are the CRF's unaries; the frame is the
bilateral term's image; the next frame's guidance stays the unrefined probabilities. Needs ``pip install
pydensecrf2`` (an sdist: a C++ compiler). From the repository root:

    python benchmarks/crf_probe.py 50 5 4 5 --data ../shared/data/davis2016-train --sequences $DEV --out pred-crf/
    savos eval --gt ../shared/data/davis2016-train --pred pred-crf/ --sequences $DEV

Arguments: the bilateral kernel's ``sxy``, ``srgb`` and ``compat``, the mean-field iterations, then any
``savos predict`` arguments.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pydensecrf.densecrf as dcrf
import torch
from pydensecrf.utils import unary_from_softmax

from savos.cli import main
from savos.inference import engine

SXY, SRGB, COMPAT, ITERATIONS = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
unrefined = engine.Predictor._finish


def refined(self: engine.Predictor, step: Any) -> torch.Tensor:
    probs = unrefined(self, step)  # sets the next guidance
    if step.frame_idx == 0 or probs.shape[0] == 0:
        return probs
    objects = np.clip(probs.float().cpu().numpy(), 1e-6, 1.0)
    background = np.clip(1.0 - objects.sum(0, keepdims=True), 1e-6, 1.0)
    softmax = np.concatenate([background, objects])
    softmax /= softmax.sum(0, keepdims=True)
    image = np.ascontiguousarray((step.image[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8))
    height, width = image.shape[:2]
    crf = dcrf.DenseCRF2D(width, height, softmax.shape[0])
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(softmax)))
    crf.addPairwiseGaussian(sxy=3, compat=3)
    crf.addPairwiseBilateral(sxy=SXY, srgb=SRGB, rgbim=image, compat=COMPAT)
    q = np.array(crf.inference(ITERATIONS), dtype=np.float32).reshape(softmax.shape[0], height, width)
    return torch.from_numpy(q[1:]).to(probs.device, probs.dtype)


engine.Predictor._finish = refined  # type: ignore[method-assign]
sys.exit(main(["predict", *sys.argv[5:]]))
