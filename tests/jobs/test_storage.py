"""Atomic writes, retries, and folder listings (on a local disk and a real S3 server)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import s3fs

from jobs.storage import is_transient, iter_dir, put_atomic, read_bytes, resolve, with_retries
from tests.s3server import SeaweedS3


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

    monkeypatch.setattr("jobs.storage.RETRY_ATTEMPTS", 2)
    calls.clear()

    def always() -> None:
        calls.append(1)
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        with_retries(always, "always")
    assert len(calls) == 2


def test_what_counts_as_transient() -> None:
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))  # server down
    assert is_transient(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"))
    assert is_transient(OSError(errno.EREMOTEIO, "We encountered an internal error"))  # s3fs's 5xx
    assert not is_transient(PermissionError(errno.EACCES, "Forbidden"))
    assert not is_transient(FileNotFoundError("gone"))
    assert not is_transient(ValueError("bad data"))


def test_permanent_errors_are_not_retried() -> None:
    calls = []

    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        with_retries(missing, "missing")
    assert len(calls) == 1


@pytest.mark.s3
def test_s3_listing_streams_in_pages_in_name_order(s3_server: SeaweedS3) -> None:
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("listing")
    names = [f"v{i:03d}" for i in range(25)]
    for name in reversed(names):
        fs.pipe_file(f"listing/root/{name}/00000.jpg", b"x")
        fs.pipe_file(f"listing/root/{name}.mp4", b"x")
    entries = iter_dir(fs, "listing/root", page=4)
    assert next(entries) == ("listing/root/v000", True)  # the first page arrives before the rest is listed
    rest = list(entries)
    assert sorted(p for p, is_dir in rest if is_dir) == [f"listing/root/{n}" for n in names[1:]]
    assert [p for p, is_dir in rest if not is_dir] == [f"listing/root/{n}.mp4" for n in names]


def test_local_listing_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    (tmp_path / "a.mp4").write_bytes(b"")
    fs, root = resolve(str(tmp_path))
    assert [(Path(p).name, d) for p, d in iter_dir(fs, root)] == [("a.mp4", False), ("b", True), ("c", True)]
