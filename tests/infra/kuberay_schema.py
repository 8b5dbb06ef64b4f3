"""JSON Schemas for the KubeRay kinds our manifests use, written from KubeRay v1.7.0's documented CRD fields
(``ray-operator/apis/ray/v1/{raycluster,rayjob,raycronjob}_types.go``). Unknown fields are errors, so a typo or
a field KubeRay does not have (RayJob has no ``schedule``) fails a test instead of being dropped by the API
server. Pod templates inside are checked separately against Kubernetes' own schema.
"""

from __future__ import annotations

from typing import Any

KUBERAY_VERSION = "v1.7.0"

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_POD_TEMPLATE = {"type": "object"}  # validated as a core PodTemplate by kubernetes-validate
_POSITIVE = {"type": "integer", "minimum": 1}
_NON_NEGATIVE = {"type": "integer", "minimum": 0}

_HEAD_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["template"],
    "properties": {
        "rayStartParams": _STRING_MAP,  # values must be strings: num-cpus: "0", not 0
        "template": _POD_TEMPLATE,
        "serviceType": {"type": "string"},
        "headService": {"type": "object"},
        "enableIngress": {"type": "boolean"},
        "headPodIdentity": {"type": "object"},
    },
}

_WORKER_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["groupName", "template"],
    "properties": {
        "groupName": {"type": "string", "minLength": 1},
        "replicas": _NON_NEGATIVE,
        "minReplicas": _NON_NEGATIVE,
        "maxReplicas": _NON_NEGATIVE,
        "idleTimeoutSeconds": _NON_NEGATIVE,
        "numOfHosts": _POSITIVE,
        "rayStartParams": _STRING_MAP,
        "template": _POD_TEMPLATE,
        "scaleStrategy": {"type": "object"},
        "suspend": {"type": "boolean"},
    },
}

RAY_CLUSTER_SPEC: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["headGroupSpec"],
    "properties": {
        "rayVersion": {"type": "string"},
        "enableInTreeAutoscaling": {"type": "boolean"},
        "autoscalerOptions": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "upscalingMode": {"enum": ["Default", "Aggressive", "Conservative"]},
                "idleTimeoutSeconds": _NON_NEGATIVE,
                "version": {"enum": ["v1", "v2"]},
                "image": {"type": "string"},
                "imagePullPolicy": {"type": "string"},
                "resources": {"type": "object"},
                "env": {"type": "array"},
                "envFrom": {"type": "array"},
                "volumeMounts": {"type": "array"},
                "securityContext": {"type": "object"},
            },
        },
        "headGroupSpec": _HEAD_GROUP,
        "workerGroupSpecs": {"type": "array", "items": _WORKER_GROUP},
        "headServiceAnnotations": _STRING_MAP,
        "gcsFaultToleranceOptions": {"type": "object"},
        "suspend": {"type": "boolean"},
        "managedBy": {"type": "string"},
        "authOptions": {"type": "object"},
    },
}

RAY_JOB_SPEC: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "entrypoint": {"type": "string", "minLength": 1},
        "runtimeEnvYAML": {"type": "string"},
        "jobId": {"type": "string"},
        "metadata": _STRING_MAP,
        "rayClusterSpec": RAY_CLUSTER_SPEC,
        "clusterSelector": _STRING_MAP,
        "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"]},
        "submitterPodTemplate": _POD_TEMPLATE,
        "submitterConfig": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"backoffLimit": _NON_NEGATIVE},
        },
        "shutdownAfterJobFinishes": {"type": "boolean"},
        "ttlSecondsAfterFinished": _NON_NEGATIVE,
        "activeDeadlineSeconds": _POSITIVE,
        "backoffLimit": _NON_NEGATIVE,
        "suspend": {"type": "boolean"},
        "entrypointNumCpus": {"type": "number"},
        "entrypointNumGpus": {"type": "number"},
        "entrypointResources": {"type": "string"},
        "managedBy": {"type": "string"},
        "deletionStrategy": {"type": "object"},
    },
    # ttlSecondsAfterFinished only acts with shutdownAfterJobFinishes (KubeRay's validation refuses the rest).
    "dependentRequired": {"ttlSecondsAfterFinished": ["shutdownAfterJobFinishes"]},
    "anyOf": [{"required": ["rayClusterSpec"]}, {"required": ["clusterSelector"]}],
}

RAY_CRON_JOB_SPEC: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["schedule", "jobTemplate"],
    "properties": {
        "schedule": {"type": "string", "pattern": r"^(\S+\s+){4}\S+$"},
        "timeZone": {"type": "string"},
        "suspend": {"type": "boolean"},
        "jobTemplate": RAY_JOB_SPEC,
    },
}


def _kind(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "ray.io/v1"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "required": ["name"]},
            "spec": spec,
        },
    }


SCHEMAS = {"RayJob": _kind(RAY_JOB_SPEC), "RayCluster": _kind(RAY_CLUSTER_SPEC), "RayCronJob": _kind(RAY_CRON_JOB_SPEC)}


def pod_templates(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(where, template)`` for every pod template inside a KubeRay object."""
    spec = doc["spec"]
    if doc["kind"] == "RayCronJob":
        spec = spec["jobTemplate"]
    out = []
    if doc["kind"] in ("RayJob", "RayCronJob"):
        if "submitterPodTemplate" in spec:
            out.append(("submitterPodTemplate", spec["submitterPodTemplate"]))
        spec = spec.get("rayClusterSpec", {})
    if "headGroupSpec" in spec:
        out.append(("headGroupSpec.template", spec["headGroupSpec"]["template"]))
    for group in spec.get("workerGroupSpecs", []):
        out.append((f"workerGroupSpecs[{group['groupName']}].template", group["template"]))
    return out
