"""Atomic writes, retries, and folder listings (on a local disk and a real S3 server)."""

from __future__ import annotations

import errno
import inspect
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import s3fs

from savos.data.synthetic import make_video
from savos_job.corpus import VideoTask, discover
from savos_job.remote import load_annotations, open_video
from savos_job.retry import RetryPolicy, is_transient
from savos_job.storage import Storage
from tests.conftest import write_dataset
from tests.s3server import SeaweedS3


def test_local_put_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    storage, root = Storage.open(str(tmp_path), RetryPolicy())
    target = f"{root}/masks/video_id=a/part-0.parquet"
    storage.put(target, b"first")
    storage.put(target, b"second")
    assert storage.read(target) == b"second"
    assert [p.name for p in (tmp_path / "masks" / "video_id=a").iterdir()] == ["part-0.parquet"]


def test_transient_errors_are_retried_then_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("savos_job.retry.time.sleep", waits.append)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset by peer")
        return "ok"

    assert RetryPolicy(base_delay=1.0, jitter=0.5).call(flaky, "flaky") == "ok"
    assert len(calls) == 3
    assert 1.0 <= waits[0] < 1.5
    assert 2.0 <= waits[1] < 3.0
    calls.clear()

    def always() -> None:
        calls.append(1)
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        RetryPolicy(attempts=2).call(always, "always")
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
        RetryPolicy().call(missing, "missing")
    assert len(calls) == 1


@pytest.mark.s3
def test_s3_listing_streams_in_pages_in_name_order(s3_server: SeaweedS3) -> None:
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("listing")
    names = [f"v{i:03d}" for i in range(25)]
    for name in reversed(names):
        fs.pipe_file(f"listing/root/{name}/00000.jpg", b"x")
        fs.pipe_file(f"listing/root/{name}.mp4", b"x")
    storage, root = Storage.open("s3://listing/root", RetryPolicy())
    entries = storage.iter_dir(root, page=4)
    assert next(entries) == ("listing/root/v000", "directory")  # the first page arrives before the rest is listed
    rest = list(entries)
    assert sorted(p for p, kind in rest if kind == "directory") == [f"listing/root/{n}" for n in names[1:]]
    assert [p for p, kind in rest if kind == "file"] == [f"listing/root/{n}.mp4" for n in names]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_every_file_at_any_depth_with_its_size(where: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    files = {f"a/video_id=v{i}/part-0.parquet": b"x" * i for i in range(7)} | {"b.json": b"{}", "a/c/d/e": b""}
    if where == "s3":
        request.getfixturevalue("s3_server")
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir("files")
        for name, data in files.items():
            fs.pipe_file(f"files/out/{name}", data)
        storage, root = Storage.open("s3://files/out", RetryPolicy())
    else:
        for name, data in files.items():
            (tmp_path / "out" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "out" / name).write_bytes(data)
        storage, root = Storage.open(str(tmp_path / "out"), RetryPolicy())
    found = {path[len(root) + 1 :]: size for path, size in storage.iter_files(root, page=3)}  # S3: pages of 3
    assert found == {name: len(data) for name, data in files.items()}
    assert list(storage.iter_files(storage.join(root, "nothing"))) == []


def test_local_listing_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    (tmp_path / "a.mp4").write_bytes(b"")
    storage, root = Storage.open(str(tmp_path), RetryPolicy())
    expected = [("a.mp4", "file"), ("b", "directory"), ("c", "directory"), ("fifo", "other")]
    os.mkfifo(tmp_path / "fifo")
    assert [(Path(p).name, kind) for p, kind in storage.iter_dir(root)] == expected


def test_a_stream_broken_off_goes_on_where_it_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("savos_job.retry.time.sleep", lambda _: None)
    retry = RetryPolicy(attempts=2)  # one retry a break: rows read in between renew it
    breaks = {1: 4, 2: 7}  # the first read breaks off at row 4, the second further on
    opened = []

    def rows() -> Iterator[int]:
        opened.append(1)
        for row in range(10):
            if row == breaks.get(len(opened)):
                raise ConnectionError("reset by peer")
            yield row

    assert list(retry.resumable(rows, "rows")) == list(range(10))
    assert len(opened) == 3

    def bad_data() -> Iterator[int]:
        yield 0
        raise ValueError("not JSON")

    with pytest.raises(ValueError, match="not JSON"):
        list(retry.resumable(bad_data, "rows"))


# botocore's own retries off: an outage of a second then proves that the job's retries carry it, every time.
OURS_ALONE = RetryPolicy(sdk_attempts=1)


def _outage(server: SeaweedS3, seconds: float = 1.0) -> threading.Thread:
    """Stop the server now; start it again (with all it held) in a while, from another thread."""
    server.stop(grace=0)

    def restart() -> None:
        time.sleep(seconds)
        server.start()

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    return thread


@pytest.mark.s3
@pytest.mark.slow
def test_a_listing_broken_off_by_an_outage_goes_on_where_it_stopped(stoppable_s3: SeaweedS3) -> None:
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("listing")
    names = [f"v{i:03d}" for i in range(12)]
    for name in names:
        fs.pipe_file(f"listing/root/{name}/00000.jpg", b"x")
    storage, root = Storage.open("s3://listing/root", OURS_ALONE)
    entries = storage.iter_dir(root, page=4)
    first = [next(entries) for _ in range(4)]  # the first page, and no more
    restart = _outage(stoppable_s3)
    rest = list(entries)
    restart.join()
    assert [path for path, _ in first + rest] == [f"listing/root/{n}" for n in names]


@pytest.mark.s3
@pytest.mark.slow
def test_a_video_opened_during_an_outage_waits_for_storage(stoppable_s3: SeaweedS3, tmp_path: Path) -> None:
    """What a worker reads when a video starts: the corpus layout, the video's frame list, its masks folder."""
    video = make_video(4, num_objects=2, seed=0)
    root = write_dataset(tmp_path / "corpus", {"v0": video}, every=2)
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("corpus")
    fs.put(f"{root}/", "corpus/davis/", recursive=True)
    retry = OURS_ALONE
    s3 = Storage.open("s3://corpus", retry)[0].fs  # the filesystem the job's calls go through

    restarts: list[threading.Thread] = []

    def outage() -> None:
        for restart in restarts:  # the last outage over: the server wholly up (a call may succeed before that)
            restart.join()
        s3.invalidate_cache()  # what was listed before is asked again
        restarts.append(_outage(stoppable_s3))

    outage()
    (task,) = discover("s3://corpus/davis", retry=retry)
    outage()
    frames = open_video(task, tmp_path, retry)
    outage()
    annotations = load_annotations(task, frames, tmp_path, retry)
    restarts[-1].join()
    assert task == VideoTask("v0", "s3://corpus/davis/JPEGImages/480p/v0", "s3://corpus/davis/Annotations/480p/v0")
    assert sorted(annotations) == [0, 2]
    for t, ids in annotations.items():
        np.testing.assert_array_equal(ids, video.masks[t])


def test_the_one_private_s3fs_call_we_use_is_still_there() -> None:
    """``savos_job.storage.s3_request`` pages listings through s3fs's private ``_call_s3(operation, **request)``;
    a new s3fs that renames it fails here, not in a user's listing (the S3 tests above exercise it on a real
    server)."""
    call = getattr(s3fs.S3FileSystem, "_call_s3", None)
    assert call is not None
    assert inspect.iscoroutinefunction(call)
    assert list(inspect.signature(call).parameters)[:2] == ["self", "method"]
