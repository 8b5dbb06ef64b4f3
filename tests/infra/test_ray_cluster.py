"""``ray_cluster.yaml`` passes Ray's own cluster-config validation, runs the project's image, and the job command
it documents parses with the job's real command-line parser. The Dockerfile builds on the Ray version we pin."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import yaml

from savos_job.config import parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_ray_validates_the_cluster_config() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    validate_config(prepare_config(config))  # raises on unknown keys, bad resources, missing node types
    assert config["available_node_types"]["gpu_worker"]["min_workers"] == 0
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}
    assert not config["setup_commands"]  # nothing to install by hand: the image has it all
    assert "savos" in config["docker"]["image"]


def test_the_documented_job_command_parses() -> None:
    text = (ROOT / "ray_cluster.yaml").read_text()
    (line,) = [x for x in text.splitlines() if "ray job submit" in x]
    command = shlex.split(line.split(" -- ", 1)[1])
    assert command[:3] == ["python", "-m", "savos_job.prelabel"]
    config = parse_config(command[3:])
    assert config.input.startswith("s3://") and config.output.startswith("s3://")  # noqa: PT018
    assert config.address == "auto"


def test_the_image_builds_on_the_pinned_ray() -> None:
    dockerfile = (ROOT / "infra" / "docker" / "Dockerfile").read_text()
    (image_ray,) = re.findall(r"^ARG RAY_VERSION=(\S+)$", dockerfile, re.M)
    assert "FROM rayproject/ray:${RAY_VERSION}-py311-gpu" in dockerfile
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["job"]
    (ray_pin,) = [d for d in dependencies if d.startswith("ray")]
    assert ray_pin.endswith(f"=={image_ray}"), (ray_pin, image_ray)
    (job,) = [d for d in yaml.safe_load_all((ROOT / "infra/k8s/base/rayjob.yaml").read_text())]
    assert job["spec"]["rayClusterSpec"]["rayVersion"] == image_ray
    assert "pip install --no-cache-dir '.[job]'" in dockerfile  # the one dependency list: pyproject.toml
    assert "USER ray" in dockerfile
