"""Every Kubernetes manifest, as kustomize renders it for each overlay and each optional component: core kinds
valid in Kubernetes' own strict schema, KubeRay kinds valid against KubeRay's documented fields, entrypoints
accepted by the job's real command-line parser, and no credentials anywhere."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from string import Template
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from savos_job.config import parse_config
from tests.infra.kuberay_schema import SCHEMAS, pod_templates
from tests.infra.render import COMPONENTS, OVERLAYS, render

K8S_VERSION = "1.33.0"
VARIANTS = [(o, c) for o in OVERLAYS for c in [[], *[[name] for name in COMPONENTS], COMPONENTS]]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], list[dict[str, Any]]]:
    workdir = tmp_path_factory.mktemp("kustomize")
    return {(o, "+".join(c)): render(o, c, workdir) for o, c in VARIANTS}


def test_the_layout_has_two_clouds_and_three_components() -> None:
    assert OVERLAYS == ["aws", "gcp"]
    assert COMPONENTS == ["interactive", "schedule-cronjob", "schedule-raycronjob"]


def _docs(rendered: dict[tuple[str, str], list[dict[str, Any]]]):
    for (overlay, components), docs in rendered.items():
        for doc in docs:
            yield f"{overlay}[{components}] {doc['kind']}/{doc['metadata']['name']}", doc


def test_core_kinds_validate_strictly(rendered) -> None:
    checked = set()
    for where, doc in _docs(rendered):
        if doc["apiVersion"].startswith("ray.io/"):
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{where}: {err.message} at {list(err.path)}")
        checked.add(doc["kind"])
    assert checked == {"ServiceAccount", "ConfigMap", "CronJob", "Role", "RoleBinding"}


def test_kuberay_kinds_validate_against_the_documented_fields(rendered) -> None:
    checked = set()
    for where, doc in _docs(rendered):
        if not doc["apiVersion"].startswith("ray.io/"):
            continue
        try:
            jsonschema.validate(doc, SCHEMAS[doc["kind"]])
        except jsonschema.ValidationError as err:
            pytest.fail(f"{where}: {err.message} at {list(err.absolute_path)}")
        for part, template in pod_templates(doc):
            pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}
            try:
                kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                pytest.fail(f"{where} {part}: {err.message} at {list(err.path)}")
        checked.add(doc["kind"])
    assert checked == {"RayJob", "RayCluster", "RayCronJob"}


def test_the_schema_refuses_what_kuberay_does_not_have(rendered) -> None:
    (job,) = [d for d in rendered[("aws", "")] if d["kind"] == "RayJob"]
    bad = {**job, "spec": {**job["spec"], "schedule": "0 2 * * *"}}  # RayJob has no schedule (it was reverted)
    with pytest.raises(jsonschema.ValidationError, match="schedule"):
        jsonschema.validate(bad, SCHEMAS["RayJob"])


def test_gpu_workers_request_gpus_tolerate_the_taint_and_autoscale(rendered) -> None:
    expected_selector = {"aws": "node.kubernetes.io/instance-type", "gcp": "cloud.google.com/gke-accelerator"}
    for overlay in OVERLAYS:
        (job,) = [d for d in rendered[(overlay, "")] if d["kind"] == "RayJob"]
        spec = job["spec"]
        assert spec["shutdownAfterJobFinishes"] is True
        assert spec["ttlSecondsAfterFinished"] > 0
        assert spec["backoffLimit"] >= 1
        assert spec["activeDeadlineSeconds"] > 0
        cluster = spec["rayClusterSpec"]
        assert cluster["enableInTreeAutoscaling"] is True
        (group,) = cluster["workerGroupSpecs"]
        assert group["minReplicas"] < group["maxReplicas"]
        pod = group["template"]["spec"]
        (container,) = pod["containers"]
        assert (
            container["resources"]["requests"]["nvidia.com/gpu"] == container["resources"]["limits"]["nvidia.com/gpu"]
        )
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert list(pod["nodeSelector"]) == [expected_selector[overlay]]
        images = {c["image"] for t in pod_templates(job) for c in t[1]["spec"]["containers"]}
        assert len(images) == 1 and "savos" in images.pop()  # noqa: PT018 - one image, ours


def _entrypoints(docs: list[dict[str, Any]]) -> list[str]:
    out = []
    for doc in docs:
        if doc["kind"] == "RayJob":
            out.append(doc["spec"]["entrypoint"])
        elif doc["kind"] == "RayCronJob":
            out.append(doc["spec"]["jobTemplate"]["entrypoint"])
    return out


def test_entrypoints_parse_with_the_real_cli_and_take_the_overlays_uris(rendered) -> None:
    for (overlay, components), docs in rendered.items():
        (params,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "savos-prelabel-params"]
        env = params["data"]
        assert set(env) == {"SAVOS_INPUT", "SAVOS_OUTPUT"}
        entrypoints = _entrypoints(docs)
        assert entrypoints, f"{overlay}[{components}] has no job"
        for entrypoint in entrypoints:
            # The Ray job runs its entrypoint in a shell on the head, whose environment has the ConfigMap.
            words = shlex.split(Template(entrypoint).substitute(env))
            assert words[:3] == ["python", "-m", "savos_job.prelabel"], entrypoint
            config = parse_config(words[3:])
            assert (config.input, config.output) == (env["SAVOS_INPUT"], env["SAVOS_OUTPUT"])
            assert config.address == "auto"
        scheme = {"aws": "s3://", "gcp": "gs://"}[overlay]
        assert env["SAVOS_INPUT"].startswith(scheme) and env["SAVOS_OUTPUT"].startswith(scheme)  # noqa: PT018


def test_the_installed_console_script_answers_help() -> None:
    out = subprocess.run([sys.executable, "-m", "savos_job.prelabel", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "--input" in out.stdout and "--gpus-per-actor" in out.stdout  # noqa: PT018


def test_credentials_only_by_reference(rendered) -> None:
    for where, doc in _docs(rendered):
        text = str(doc)
        assert not re.search(r"(?i)(secret_access_key|password|token)['\"]?:\s*['\"]?\w", text), where
        for _, template in pod_templates(doc) if doc["apiVersion"].startswith("ray.io/") else []:
            for container in template["spec"]["containers"]:
                assert all("value" not in e or "KEY" not in e["name"] for e in container.get("env", [])), where
                secrets = [e["secretRef"] for e in container.get("envFrom", []) if "secretRef" in e]
                assert secrets == [{"name": "savos-storage-credentials", "optional": True}], where


def test_scheduled_runs_both_ways(rendered) -> None:
    cron = {d["kind"]: d for d in rendered[("aws", "schedule-cronjob")]}
    script = cron["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "kubectl get rayjob savos-prelabel" in script and "kubectl create -f -" in script  # noqa: PT018
    rules = cron["Role"]["rules"]
    assert rules == [{"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["get", "list", "create", "delete"]}]
    assert cron["RoleBinding"]["subjects"][0]["namespace"] == "savos"
    ray_cron = {d["kind"]: d for d in rendered[("gcp", "schedule-raycronjob")]}
    assert ray_cron["RayCronJob"]["spec"]["jobTemplate"] == ray_cron["RayJob"]["spec"]  # one spec, never two


def test_interactive_cluster_is_the_jobs_cluster(rendered) -> None:
    docs = {d["kind"]: d for d in rendered[("aws", "interactive")]}
    assert docs["RayCluster"]["spec"] == docs["RayJob"]["spec"]["rayClusterSpec"]


def test_overlays_change_only_the_overlay(rendered) -> None:
    base = Path(__file__).resolve().parents[2] / "infra" / "k8s" / "base"
    for path in base.iterdir():
        assert "my-company" not in path.read_text() and "123456789012" not in path.read_text(), path  # noqa: PT018
