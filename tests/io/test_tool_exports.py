"""Exports into the annotation tools, read back by the tools' own libraries: CVAT XML by Datumaro's CVAT
importer, Label Studio tasks by label-studio-sdk's brush decoder; on the job's output for the real judo sample
(four objects, three of them appearing later)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import datumaro as dm
import numpy as np
import pytest
from label_studio_sdk.converter.brush import decode_from_annotation

from savos.cli import main
from savos.data.errors import InputError
from savos.io import VideoMasks
from savos.io.exports import export_video, read_export
from savos.io.exports.cvat import decode_cvat_rle, encode_cvat_rle
from tests.io.conftest import NAMES


def _datumaro_ids(xml: Path, frames: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Object ids per frame as Datumaro reads a CVAT export (``annotations.xml`` beside ``images/``)."""
    folder = xml.parent / "datumaro"
    folder.mkdir()
    shutil.copy(xml, folder / "annotations.xml")
    (folder / "images").symlink_to(frames)
    dataset = dm.Dataset.import_from(str(folder / "annotations.xml"), "cvat")
    labels = dataset.categories()[dm.AnnotationType.label]
    ids = np.zeros(shape, np.int32)
    for item in dataset:
        for mask in item.annotations:
            assert mask.type == dm.AnnotationType.mask
            obj_id = int(mask.attributes["object_id"])
            assert labels[mask.label].name == NAMES[obj_id]
            t = item.attributes["frame"]
            assert not ids[t][mask.image.astype(bool)].any()  # objects do not overlap
            ids[t][mask.image.astype(bool)] = obj_id
    return ids


def test_cvat_images_layout_reads_back_in_datumaro_pixel_for_pixel(
    labelled: tuple[Path, VideoMasks], tmp_path: Path
) -> None:
    frames, video = labelled
    xml = export_video(video, "cvat-images", tmp_path, names=NAMES)
    np.testing.assert_array_equal(_datumaro_ids(xml, frames, video.ids.shape), video.ids)


def test_cvat_video_layout_is_tracks_with_the_same_masks(judo_masks: VideoMasks, tmp_path: Path) -> None:
    video_xml = export_video(judo_masks, "cvat", tmp_path / "video", names=NAMES)
    images_xml = export_video(judo_masks, "cvat-images", tmp_path / "images", names=NAMES)
    root = ET.parse(video_xml).getroot()
    assert root.findtext("meta/task/mode") == "interpolation"
    assert root.findtext("meta/task/original_size/width") == "854"
    tracks = root.findall("track")
    assert [t.get("label") for t in tracks] == [NAMES[i] for i in (1, 2, 3, 4)]
    # every mask of a track is, byte for byte, the mask Datumaro decodes from the images layout (above)
    per_frame = {
        (int(image.get("id", "")), mask.findtext("attribute")): mask.attrib
        for image in ET.parse(images_xml).getroot().iter("image")
        for mask in image.findall("mask")
    }
    geometry = ("rle", "left", "top", "width", "height")
    for track in tracks:
        shapes = track.findall("mask")
        obj_id = shapes[0].findtext("attribute")
        first = int(shapes[0].get("frame", ""))
        assert first == int(np.argmax((judo_masks.ids == int(obj_id or 0)).any(axis=(1, 2))))
        assert [int(s.get("frame", "")) for s in shapes] == list(range(first, len(judo_masks.ids)))
        for shape in shapes:
            key = (int(shape.get("frame", "")), obj_id)
            if shape.get("outside") == "1":
                assert key not in per_frame
            else:
                assert [shape.get(k) for k in geometry] == [per_frame[key][k] for k in geometry]
    _, ids = read_export(video_xml, "cvat")
    np.testing.assert_array_equal(ids, judo_masks.ids)


def test_cvat_video_layout_marks_an_object_outside_where_it_is_gone(tmp_path: Path) -> None:
    ids = np.zeros((4, 6, 8), np.uint8)
    ids[0, 1:3, 2:5] = 5
    ids[3, 4:6, 0:2] = 5
    video = VideoMasks("v", ["a", "b", "c", "d"], [5], ids, {5: np.ones(4, np.float32)}, "m")
    (track,) = ET.parse(export_video(video, "cvat", tmp_path)).getroot().findall("track")
    assert [s.get("outside") for s in track.findall("mask")] == ["0", "1", "1", "0"]
    assert track.findall("mask")[1].get("left") == "2"  # the last geometry, as CVAT keeps it
    np.testing.assert_array_equal(read_export(tmp_path / "v.xml", "cvat")[1], ids)


@pytest.mark.parametrize("seed", range(5))
def test_cvat_rle_round_trip(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((7, 9)) < 0.4
    mask[rng.integers(7), rng.integers(9)] = True
    rle, left, top, width, height = encode_cvat_rle(mask)
    np.testing.assert_array_equal(decode_cvat_rle(rle, left, top, width, height, (7, 9)), mask)


def test_a_cvat_mask_outside_its_frame_is_refused_naming_the_file(judo_masks: VideoMasks, tmp_path: Path) -> None:
    xml = export_video(judo_masks, "cvat", tmp_path, names=NAMES)
    text = xml.read_text()
    first = text.index('left="') + len('left="')
    xml.write_text(text[:first] + "850" + text[text.index('"', first) :])
    with pytest.raises(InputError, match=r"judo\.xml: object 1, frame 0: the box .* is outside the 854x480 frame"):
        read_export(xml, "cvat")


def test_labelstudio_tasks_decode_with_the_sdk(labelled: tuple[Path, VideoMasks], tmp_path: Path) -> None:
    video = labelled[1]
    path = export_video(video, "labelstudio", tmp_path, names=NAMES, image_url="s3://bucket/{video_id}/{frame}.jpg")
    tasks = json.loads(path.read_text())
    assert len(tasks) == len(video.frame_names)
    by_name = {name: obj_id for obj_id, name in NAMES.items()}
    for t, task in enumerate(tasks):
        assert task["data"]["image"] == f"s3://bucket/{video.video_id}/{video.frame_names[t]}.jpg"
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == video.model
        ids = np.zeros(video.ids.shape[1:], np.int32)
        for region in prediction["result"]:
            obj_id = by_name[region["value"]["brushlabels"][0]]
            assert region["score"] == pytest.approx(float(video.scores[obj_id][t]))
            # the sdk's converter reads a flattened region, as in an exported annotation
            (layer,) = decode_from_annotation("mask", [{**region, **region["value"]}]).values()
            ids[layer > 0] = obj_id
        np.testing.assert_array_equal(ids, video.ids[t])
    names, ids = read_export(path, "labelstudio", NAMES)  # the reader corrections will come back through
    assert names == video.frame_names
    np.testing.assert_array_equal(ids, video.ids)


def test_export_command_writes_tool_formats_and_the_labelstudio_config(judo: tuple[Path, Path], tmp_path: Path) -> None:
    out = str(judo[1])
    labels = [arg for obj_id, name in NAMES.items() for arg in ("--label", f"{obj_id}={name}")]
    assert main(["export", out, "--video-id", "judo", "--format", "cvat", "--dest", str(tmp_path), *labels]) == 0
    assert [t.get("label") for t in ET.parse(tmp_path / "judo.xml").getroot().iter("track")] == list(NAMES.values())
    assert main(["export", out, "--video-id", "judo", "--format", "labelstudio", "--dest", str(tmp_path)]) == 0
    config = ET.parse(tmp_path / "labelstudio-config.xml").getroot()
    assert [label.get("value") for label in config.iter("Label")] == [f"object {i}" for i in (1, 2, 3, 4)]
    with pytest.raises(SystemExit, match="--label 'rider': expected ID=NAME"):
        main(["export", out, "--video-id", "judo", "--format", "cvat", "--dest", str(tmp_path), "--label", "rider"])


def test_labelstudio_refuses_two_objects_with_one_label(judo_masks: VideoMasks, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="two objects share a label"):
        export_video(judo_masks, "labelstudio", tmp_path, names={1: "judoka", 2: "judoka"})


@pytest.mark.parametrize("estimated", [True, False])
def test_the_tools_get_the_expected_j_as_score_where_there_is_one(tmp_path: Path, estimated: bool) -> None:
    ids = np.zeros((2, 6, 8), np.uint8)
    ids[:, 1:3, 2:5] = 1
    ids[:, 4:6, 0:2] = 2
    scores = {1: np.array([0.9, 0.8], np.float32), 2: np.array([0.7, 0.6], np.float32)}
    estimates = {1: np.array([0.55, 0.45], np.float32), 2: np.array([0.35, 0.25], np.float32)}
    video = VideoMasks("v", ["a", "b"], [1, 2], ids, scores, "m", estimates if estimated else None)
    shown = estimates if estimated else scores

    root = ET.parse(export_video(video, "cvat", tmp_path / "cvat")).getroot()
    for track in root.findall("track"):
        obj_id = int(track.find("mask/attribute[@name='object_id']").text)  # type: ignore[union-attr]
        values = [float(m.findtext("attribute[@name='score']") or "nan") for m in track.findall("mask")]
        np.testing.assert_allclose(values, shown[obj_id], atol=5e-4)
    declared = root.findall("meta/task/labels/label/attributes/attribute/name")
    assert sorted({a.text for a in declared}) == ["object_id", "score"]

    tasks = json.loads(export_video(video, "labelstudio", tmp_path / "ls").read_text())
    for t, task in enumerate(tasks):
        (prediction,) = task["predictions"]
        by_object = {int(r["id"].split("-")[1]): r["score"] for r in prediction["result"]}
        assert by_object == pytest.approx({1: shown[1][t], 2: shown[2][t]})
        assert prediction["score"] == pytest.approx((shown[1][t] + shown[2][t]) / 2)
