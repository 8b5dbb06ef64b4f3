"""Fixtures the job's tests share: a local Ray instance per module, a tiny checkpoint on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from savos.checkpoint import save_checkpoint
from savos.model import SAVOS


@pytest.fixture(scope="module")
def ray_local(request: pytest.FixtureRequest):
    """Two CPUs, as on the CI machine, unless the module sets ``RAY_CPUS``."""
    ray = pytest.importorskip("ray")
    cpus = getattr(request.module, "RAY_CPUS", 2)
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def checkpoint(tiny_model: SAVOS, tmp_path: Path) -> Path:
    """The tiny test model saved as a checkpoint, its id ``tiny``."""
    save_checkpoint(path := tmp_path / "tiny.pt", tiny_model, meta={"checkpoint_id": "tiny"})
    return path
