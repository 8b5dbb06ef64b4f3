"""Pre-labels into a real Label Studio server (SQLite, on 127.0.0.1): a project made with the exported config,
the exported tasks imported through its API, and the predictions it stores decoded equal to the job's masks.

The server runs from its own venv (``make test`` builds ``.venv-labelstudio`` and names its ``label-studio`` in
``SAVOS_LABEL_STUDIO``): its pins cannot share the job's environment."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import requests
from label_studio_sdk import LabelStudio
from label_studio_sdk.converter.brush import decode_rle

from savos.io import VideoMasks
from savos.io.exports.labelstudio import labelstudio_config, labelstudio_tasks
from tests.io.conftest import NAMES

pytestmark = pytest.mark.slow

USER, PASSWORD = "prelabels@example.com", "savos-test-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a Label Studio server started for these tests, stopped after them."""
    executable = os.environ.get("SAVOS_LABEL_STUDIO")
    if not executable:
        pytest.skip("no Label Studio server to start: SAVOS_LABEL_STUDIO is set by `make test`")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tmp_path_factory.mktemp("label-studio")
    env = {**os.environ, "LATEST_VERSION_CHECK": "false", "LABEL_STUDIO_BASE_DATA_DIR": str(data)}
    command = [executable, "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--data-dir", str(data), "--username", USER, "--password", PASSWORD]
    with (data / "server.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (data / "server.log").read_text()[-3000:]
            try:
                if requests.get(f"{base}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "Label Studio did not start in 180 s"
            time.sleep(1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[LabelStudio]:
    """An SDK client with the user's personal access token (one a user), made by logging in."""
    base = server
    with requests.Session() as session:
        session.get(f"{base}/user/login/", timeout=10)
        form = {"email": USER, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]}
        session.post(f"{base}/user/login/", data=form, headers={"Referer": f"{base}/user/login/"}, timeout=10)
        headers = {"X-CSRFToken": session.cookies["csrftoken"], "Referer": base}
        response = session.post(f"{base}/api/token/", headers=headers, timeout=10)
        response.raise_for_status()
    with httpx.Client(timeout=60) as http:
        yield LabelStudio(base_url=base, api_key=response.json()["token"], httpx_client=http)


def test_tasks_import_into_label_studio_and_their_predictions_decode_equal(
    client: LabelStudio,
    labelled: tuple[Path, VideoMasks],
) -> None:
    video = labelled[1]
    project = client.projects.create(
        title=f"SAVOS pre-labels of {video.video_id}", label_config=labelstudio_config(NAMES.values())
    )
    assert project.id is not None
    tasks = labelstudio_tasks(video, NAMES, "/data/local-files/?d={video_id}/{frame}.jpg")
    client.projects.import_tasks(id=project.id, request=tasks)  # type: ignore[arg-type]
    stored = list(client.tasks.list(project=project.id, fields="all"))
    assert len(stored) == len(video.frame_names)
    by_name = {name: obj_id for obj_id, name in NAMES.items()}
    for task in stored:
        t = task.data["frame_idx"]
        (prediction,) = client.predictions.list(task=task.id)
        assert prediction.model_version == video.model
        ids = np.zeros(video.ids.shape[1:], np.int32)
        for region in prediction.result:
            height, width = region["original_height"], region["original_width"]
            alpha = np.reshape(decode_rle(region["value"]["rle"]), (height, width, 4))[:, :, 3]
            ids[alpha > 0] = by_name[region["value"]["brushlabels"][0]]
        np.testing.assert_array_equal(ids, video.ids[t])
