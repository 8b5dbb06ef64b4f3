"""The storage retry budget, measured: how long an operation against a stopped S3 server tries before it gives up
is what :meth:`RetryPolicy.budget_seconds` (and docs/reliability.md) says, with botocore's own retries on."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import s3fs
from botocore.exceptions import EndpointConnectionError

from savos_job.output import OutputLocation
from savos_job.retry import RetryPolicy
from tests.s3server import SeaweedS3


def test_the_budget_adds_up_the_layers() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.5, jitter=0.2, sdk_attempts=2)
    ours = 0.5 + 1 + 2 + 4 + 8  # the waits between six tries
    assert policy.budget_seconds() == pytest.approx(ours * 1.1 + 6 * 0.5)  # botocore: U[0, 1) s before its retry
    assert policy.budget_seconds(worst=True) == pytest.approx(ours * 1.2 + 6 * 1.0)
    assert RetryPolicy(attempts=1, sdk_attempts=1).budget_seconds(worst=True) == 0


def test_botocore_retries_are_the_policys(tmp_path: Path) -> None:
    """The S3 client the job's storage calls go through retries each request as the policy says, not as
    botocore's defaults or the environment would; s3fs's own retry layer is off."""
    output = OutputLocation.open("s3://bucket/out", RetryPolicy(sdk_attempts=3))
    fs = output.storage.fs
    assert isinstance(fs, s3fs.S3FileSystem)
    assert fs.retries == 1
    assert fs.config_kwargs["retries"] == {"mode": "standard", "total_max_attempts": 3}


@pytest.mark.s3
@pytest.mark.slow
def test_a_write_to_a_stopped_server_gives_up_after_the_documented_budget(
    stoppable_s3: SeaweedS3, caplog: pytest.LogCaptureFixture
) -> None:
    # The default's layers with one try fewer of ours (--storage-retries 5): about 11 s, not 20, of the suite's time.
    # The default's own 20 s budget measured the same way: 20.97 s (docs/reliability.md).
    policy = RetryPolicy(attempts=5)
    output = OutputLocation.open("s3://budget/out", policy)
    output.storage.fs.mkdir("budget")
    output.put(output.run_summary("before"), b"{}")  # the server answers
    stoppable_s3.stop(grace=0)
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="savos_job.retry"), pytest.raises(EndpointConnectionError):
        output.put(output.run_summary("after"), b"{}")
    waited = time.perf_counter() - start
    assert len([r for r in caplog.records if "retry" in r.getMessage()]) == policy.attempts - 1
    documented = policy.budget_seconds()
    assert abs(waited - documented) <= 0.2 * documented, f"waited {waited:.1f} s, documented {documented:.1f} s"
