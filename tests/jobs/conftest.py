"""Fixtures the job's tests share: a local Ray instance per module, or a guard that Ray never starts."""

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


@pytest.fixture
def ray_must_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting Ray or the actor pool fails the test: what a run refuses must be refused before either."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ray started for a run that cannot start")

    monkeypatch.setattr("ray.init", refuse)
    monkeypatch.setattr("savos_job.prelabel.ActorPool", refuse)
