"""The bad-input matrix: every kind of broken or odd video in one corpus, one run of the job. Each gets a clear
failure record or its documented handling (docs/reliability.md), and the rest of the corpus is labelled."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from savos.checkpoint import save_checkpoint
from savos.data import write_palette_png
from savos.data.synthetic import SyntheticVideo, make_video
from savos.io import read_video_masks
from savos.model import SAVOS
from savos_job.prelabel import EXIT_SOME_FAILED, main
from tests.conftest import write_mp4
from tests.jobs.invariants import assert_accounted, output_at

pytestmark = pytest.mark.ray

NON_UTF8 = b"caf\xe9".decode("utf-8", "surrogateescape")  # a folder name as Python reads it from a Linux disk


def _frames(folder: Path, video: SyntheticVideo, names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True)
    for t, frame in enumerate(video.frames):
        Image.fromarray(frame).save(folder / f"{(names or [f'{i:05d}' for i in range(len(video.frames))])[t]}.jpg")
    return folder


def _good(root: Path, name: str, video: SyntheticVideo) -> dict[str, str]:
    frames = _frames(root / name / "frames", video)
    (root / name / "masks").mkdir()
    write_palette_png(root / name / "masks" / "00000.png", video.masks[0])
    return {"frames": str(frames), "masks": str(root / name / "masks")}


def short_palette_png(path: Path, ids: np.ndarray) -> None:
    """A palette PNG whose pixels index past its two-colour palette (Pillow would remap them, so by hand)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = ids.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)  # 8-bit, colour type 3 (palette)
    pixels = b"".join(b"\x00" + row.tobytes() for row in ids.astype(np.uint8))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0]))
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def build_corpus(root: Path) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Manifest rows, and what should become of each id: "done" or the failure's text."""
    rows, expect = [], {}

    def add(video_id: str, entry: dict[str, str], outcome: str) -> None:
        rows.append({"video_id": video_id, **entry})
        expect.setdefault(video_id, outcome)

    add("good", _good(root, "good", make_video(4, num_objects=2, seed=1)), "done")
    entry = _good(root, "truncated", make_video(4, seed=2))
    jpeg = Path(entry["frames"]) / "00002.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:300])
    add("truncated-jpeg", entry, "cannot decode image")
    entry = _good(root, "zero", make_video(4, seed=3))
    (Path(entry["frames"]) / "00001.jpg").write_bytes(b"")
    add("zero-byte-frame", entry, "cannot decode image")
    gap = make_video(3, seed=4)
    entry = _good(root, "gap", gap)
    (Path(entry["frames"]) / "00002.jpg").rename(Path(entry["frames"]) / "00003.jpg")
    add("missing-frame", entry, "done")  # labelled in name order; frame_name keeps 00003
    entry = _good(root, "late", make_video(4, seed=5))
    (Path(entry["masks"]) / "00000.png").rename(Path(entry["masks"]) / "00002.png")
    add("first-mask-missing", entry, "done")  # objects start where their first mask is
    entry = _good(root, "nomask", make_video(3, seed=6))
    (Path(entry["masks"]) / "00000.png").unlink()
    add("no-mask", entry, "no .png masks")
    for name, shape in (("mask-larger", (80, 120)), ("mask-smaller", (40, 60))):
        entry = _good(root, name, make_video(3, seed=7))
        write_palette_png(
            Path(entry["masks"]) / "00000.png",
            np.pad(np.ones((10, 10), np.uint8), ((0, shape[0] - 10), (0, shape[1] - 10))),
        )
        add(name, entry, "mask is")
    entry = _good(root, "rgb", make_video(3, seed=8))
    Image.new("RGB", (96, 64), (255, 0, 0)).save(Path(entry["masks"]) / "00000.png")
    add("rgb-mask", entry, "RGB")
    entry = _good(root, "deep", make_video(3, seed=9))
    Image.fromarray(np.full((64, 96), 1000, np.uint16)).save(Path(entry["masks"]) / "00000.png")
    add("16-bit-mask", entry, "(uint16); expected 8-bit ids")
    entry = _good(root, "empty", make_video(3, seed=10))
    write_palette_png(Path(entry["masks"]) / "00000.png", np.zeros((64, 96), np.uint8))
    add("empty-mask", entry, "no object")
    video = make_video(3, seed=11)
    entry = _good(root, "palette", video)
    short_palette_png(Path(entry["masks"]) / "00000.png", (video.masks[0] > 0).astype(np.uint8) * 9)
    add("ids-not-in-palette", entry, "done")  # the index is the id, colour or not
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
    write_palette_png(root / "broken.png", video.masks[0])
    rows.append({"video_id": "undecodable-video", "video": str(root / "broken.mp4"), "masks": str(root / "broken.png")})
    expect["undecodable-video"] = "cannot open video"
    add("single-frame", _good(root, "single", make_video(1, seed=12)), "done")
    big = make_video(2, 2160, 3840, num_objects=2, seed=13)
    add("4k", _good(root, "4k", big), "done")
    clip = make_video(4, num_objects=2, seed=14)
    write_mp4(root / "clip.mp4", clip.frames)
    write_palette_png(root / "clip.png", clip.masks[0])
    rows.append({"video_id": "video-file", "video": str(root / "clip.mp4"), "masks": str(root / "clip.png")})
    expect["video-file"] = "done"
    add("long", _good(root, "long", make_video(520, 32, 48, seed=15)), "done")
    entry = _good(root, "crowd", make_video(3, seed=16))
    crowd = np.zeros((64, 96), np.uint8)
    for obj_id in range(1, 6):
        crowd[5:15, obj_id * 15 : obj_id * 15 + 10] = obj_id
    write_palette_png(Path(entry["masks"]) / "00000.png", crowd)
    add("too-many-objects", entry, "5 objects, more than the limit of 4")
    add("../../escape", _good(root, "escape", make_video(3, seed=17)), "done")
    add("a/b", _good(root, "slash", make_video(3, seed=18)), "done")
    add(NON_UTF8, _good(root, NON_UTF8, make_video(3, seed=19)), "done")
    add("good", _good(root, "good-again", make_video(5, seed=20)), "done")  # a duplicate id: skipped
    return rows, expect


def test_every_bad_input_is_recorded_or_handled(tmp_path: Path, tiny_model: SAVOS) -> None:
    ray = pytest.importorskip("ray")
    rows, expect = build_corpus(tmp_path / "corpus")
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))  # non-UTF-8 bytes travel as \udcXX escapes
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, tiny_model, meta={"checkpoint_id": "tiny"})
    out = tmp_path / "labels" / "out"
    args = ["--input", str(manifest), "--output", str(out), "--checkpoint", str(checkpoint), "--num-actors", "2"]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main([*args, "--max-pixels", str(512 * 512), "--max-objects", "4"]) == EXIT_SOME_FAILED
    finally:
        ray.shutdown()

    labelled, failed = assert_accounted(str(out), list(expect))
    assert labelled == {v for v, outcome in expect.items() if outcome == "done"}
    for video_id in failed:
        record = json.loads(Path(output_at(str(out)).failure(video_id)).read_text())
        assert expect[video_id] in record["error"], (video_id, record["error"])
    assert [p.name for p in (tmp_path / "labels").iterdir()] == ["out"]  # nothing outside the output

    assert read_video_masks(str(out), "good").ids.shape == (4, 64, 96)  # the first row with the id won
    (summary,) = [json.loads(p.read_text()) for p in (out / "_runs").iterdir()]
    assert summary["duplicate_ids_skipped"] == {"count": 1, "first": ["good"]}
    assert read_video_masks(str(out), "missing-frame").frame_names == ["00000", "00001", "00003"]
    late = pq.read_table(output_at(str(out)).masks("first-mask-missing")).to_pydict()
    assert sorted(set(late["frame_idx"])) == [2, 3]
    assert read_video_masks(str(out), "ids-not-in-palette").obj_ids == [9]
    assert read_video_masks(str(out), "single-frame").ids.shape[0] == 1
    assert read_video_masks(str(out), "4k").ids.shape == (2, 2160, 3840)  # masks at the frame's size
    assert pq.ParquetFile(output_at(str(out)).masks("long")).num_row_groups == 3  # 520 frames in 256-frame groups
    assert (out / "masks" / "video_id=%2E%2E%2F%2E%2E%2Fescape" / "part-0.parquet").exists()
    assert read_video_masks(str(out), "a/b").video_id == "a/b"
    assert read_video_masks(str(out), NON_UTF8).ids.shape == (3, 64, 96)
    table = pq.read_table(output_at(str(out)).masks(NON_UTF8)).to_pydict()
    assert set(table["video_id"]) == {"caf\\xe9"}  # stored as valid UTF-8 text
