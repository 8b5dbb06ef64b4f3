from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from savos.data import InputError, open_frames
from savos.data.synthetic import make_video
from tests.conftest import write_mp4


def write_frames(folder, frames, suffix=".jpg") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:05d}{suffix}")


def test_folder_frames_in_name_order(tmp_path) -> None:
    video = make_video(num_frames=4)
    write_frames(tmp_path / "v", video.frames, ".png")
    source = open_frames(tmp_path / "v")
    assert source.names == ["00000", "00001", "00002", "00003"]
    assert source.size == (64, 96)
    np.testing.assert_array_equal(np.stack(list(source)), video.frames)


def test_truncated_jpeg_names_the_file(tmp_path) -> None:
    write_frames(tmp_path / "v", make_video(num_frames=2).frames)
    broken = tmp_path / "v" / "00001.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    source = open_frames(tmp_path / "v")
    with pytest.raises(InputError, match=r"00001\.jpg: cannot decode image"):
        list(source)


def test_video_file_decodes_every_frame(tmp_path) -> None:
    video = make_video(num_frames=5)
    path = tmp_path / "clip.mp4"
    write_mp4(path, video.frames)
    source = open_frames(path)
    frames = list(source)
    assert len(frames) == 5
    assert frames[0].shape == (64, 96, 3)
    assert source.size == (64, 96)
    assert np.abs(frames[2].astype(int) - video.frames[2]).mean() < 20  # lossy codec, same picture


def test_a_video_that_does_not_decode(tmp_path) -> None:
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match=r"junk\.mp4: "):
        list(open_frames(path))


def test_missing_or_unknown_inputs(tmp_path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        open_frames(tmp_path / "absent.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no frames"):
        open_frames(tmp_path / "empty")
