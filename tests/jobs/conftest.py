"""Fixtures the job's tests share: a local Ray instance per module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ray_local(request: pytest.FixtureRequest):
    """Two CPUs, as on the CI machine, unless the module sets ``RAY_CPUS``."""
    ray = pytest.importorskip("ray")
    cpus = getattr(request.module, "RAY_CPUS", 2)
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
