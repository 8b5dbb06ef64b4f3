"""The core install (``pip install savos``) is the model and the savos command without Ray or storage; the batch
job and the job's outputs need ``savos[job]``, and say so when it is missing."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from savos.cli import JOB_MODULES
from savos.data import write_palette_png
from savos.data.synthetic import make_video

ROOT = Path(__file__).resolve().parents[1]

# Runs a command in a Python whose import system refuses the job extra's modules, as a core-only install would.
WITHOUT_JOB_EXTRA = """
import sys
BLOCKED = set(sys.argv[1].split(","))
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NotInstalled())
sys.argv = sys.argv[2:]
if sys.argv[0] == "savos-prelabel":
    from savos_job.entry import main
    sys.exit(main())
from savos.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _without_job_extra(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_JOB_EXTRA, ",".join(sorted(JOB_MODULES)), *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_core_dependencies_leave_the_job_extra_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    job = " ".join(project["optional-dependencies"]["job"]).lower()
    for module, distribution in [("ray", "ray"), ("pyarrow", "pyarrow"), ("pycocotools", "pycocotools")]:
        assert module in JOB_MODULES
        assert distribution not in core
        assert distribution in job


def test_savos_segment_runs_without_the_job_extra(tmp_path: Path, checkpoint: Path) -> None:
    video = make_video(3, num_objects=2, seed=1)
    (frames := tmp_path / "frames").mkdir()
    for t, frame in enumerate(video.frames):
        Image.fromarray(frame).save(frames / f"{t:05d}.jpg")
    write_palette_png(mask := tmp_path / "00000.png", video.masks[0])
    done = _without_job_extra(
        "savos",
        "segment",
        str(frames),
        "--mask",
        str(mask),
        "--out",
        str(tmp_path / "out"),
        "--checkpoint",
        str(checkpoint),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["00000.png", "00001.png", "00002.png"]
    assert np.asarray(Image.open(tmp_path / "out" / "00000.png")).any()
    probe = _without_job_extra("savos", "info", "--backbone", "efficientnet_lite0")
    assert probe.returncode == 0, probe.stderr[-3000:]


@pytest.mark.parametrize(
    "command",
    [
        ("savos", "report", "labels/"),
        ("savos", "export", "labels/", "--video-id", "bear", "--format", "davis", "--dest", "x/"),
        ("savos-prelabel", "--input", "corpus/", "--output", "labels/"),
    ],
)
def test_the_job_commands_name_the_missing_extra(command: tuple[str, ...]) -> None:
    done = _without_job_extra(*command)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "pip install 'savos[job]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_package_folder_is_packaged_and_the_job_installs_as_savos_job() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "savos").rglob("*.py")}
    assert folders - {"savos.checkpoints"} <= set(setuptools["packages"])
    assert setuptools["package-dir"]["savos_job"] == "jobs"
    assert "jobs" not in setuptools["packages"]  # a top-level "jobs" would collide with other projects'


def test_the_installed_job_package_is_savos_job(tmp_path: Path) -> None:
    """Outside the repository (no jobs/ folder on the path), the installed names are what a user gets."""
    probe = "import importlib.util, savos_job.prelabel; print(importlib.util.find_spec('jobs') is None)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "True"
