"""Security: credentials never reach logs, outputs or errors; outputs stay under their prefix; an output inside
the input is refused unless asked for. (Checkpoints refusing pickle payloads: tests/test_checkpoint.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import s3fs

from savos.checkpoint import save_checkpoint
from savos.data import InputError
from savos.data.synthetic import make_video
from savos.model import SAVOS
from savos_job.config import JobConfig
from savos_job.prelabel import check_output_outside_input, main
from tests.conftest import write_dataset
from tests.s3server import ACCESS_KEY, SECRET_KEY, SeaweedS3


@pytest.mark.parametrize(
    ("input_uri", "output_uri", "refused"),
    [
        ("/data/corpus", "/data/corpus", True),
        ("/data/corpus", "/data/corpus/labels", True),
        ("/data/corpus/", "/data/corpus/labels/", True),
        ("/data/corpus", "/data/corpus-labels", False),  # a sibling that shares a prefix is fine
        ("/data/corpus", "/data/labels", False),
        ("s3://bucket/corpus", "s3://bucket/corpus/out", True),
        ("s3://bucket/corpus", "s3://bucket/labels", False),
        ("s3://bucket/corpus", "/data/corpus/out", False),  # another filesystem
    ],
)
def test_output_inside_input_is_refused(input_uri: str, output_uri: str, refused: bool) -> None:
    config = JobConfig(input=input_uri, output=output_uri)
    if refused:
        with pytest.raises(InputError, match="inside the input"):
            check_output_outside_input(config)
        check_output_outside_input(JobConfig(input=input_uri, output=output_uri, allow_output_in_input=True))
    else:
        check_output_outside_input(config)


def test_the_cli_refuses_it_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--input", str(tmp_path), "--output", str(tmp_path / "labels")]) == 2
    assert "pass --allow-output-in-input" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.s3
def test_secrets_never_reach_logs_outputs_or_errors(
    s3_server: SeaweedS3,
    tmp_path: Path,
    tiny_model: SAVOS,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray = pytest.importorskip("ray")
    corpus = write_dataset(tmp_path / "corpus", {"a": make_video(3, seed=1), "b": make_video(3, seed=2)})
    (corpus / "JPEGImages" / "480p" / "b" / "00001.jpg").write_bytes(b"broken")  # one failure record
    save_checkpoint(tmp_path / "tiny.pt", tiny_model, meta={"checkpoint_id": "tiny"})
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("secrets")
    fs.put(str(corpus) + "/", "secrets/corpus/", recursive=True)
    args = ["--input", "s3://secrets/corpus", "--checkpoint", str(tmp_path / "tiny.pt")]

    ray.init(address="local", num_cpus=2, include_dashboard=False)  # worker logs come to this driver
    try:
        assert main([*args, "--output", "s3://secrets/labels", "--progress-every", "0"]) == 3
    finally:
        ray.shutdown()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY + "-wrong")  # refused credentials, as s3fs reads them
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        assert main([*args, "--output", "s3://secrets/other"]) == 2  # refused while listing the corpus
    finally:
        ray.shutdown()  # the job started a local Ray of its own
        s3fs.S3FileSystem.clear_instance_cache()
    out, err = capfd.readouterr()
    assert "access denied" in err
    written = [fs.cat_file(p) for p in fs.find("secrets/labels")]
    record = json.loads(fs.cat_file("secrets/labels/failures/b.json"))
    assert "Traceback" in record["traceback"]
    for text in [out, err, caplog.text, *(w.decode("latin-1") for w in written)]:
        assert SECRET_KEY not in text
    assert ACCESS_KEY not in json.dumps(record)
