"""Atomic writes and retries (a real S3 server is exercised by the job's end-to-end tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.storage import put_atomic, read_bytes, resolve, with_retries


def test_local_put_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    fs, root = resolve(str(tmp_path))
    target = f"{root}/masks/video_id=a/part-0.parquet"
    put_atomic(fs, target, b"first")
    put_atomic(fs, target, b"second")
    assert read_bytes(target) == b"second"
    assert [p.name for p in (tmp_path / "masks" / "video_id=a").iterdir()] == ["part-0.parquet"]


def test_transient_errors_are_retried_then_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("jobs.storage.time.sleep", lambda _: None)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset by peer")
        return "ok"

    assert with_retries(flaky, "flaky") == "ok"
    assert len(calls) == 3

    def always() -> None:
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        with_retries(always, "always", attempts=2)


def test_permanent_errors_are_not_retried() -> None:
    calls = []

    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        with_retries(missing, "missing")
    assert len(calls) == 1
