"""Kustomize files for ``k8s/base``, each ``k8s/apps/<app>`` and the kind / minikube overlays (pure dicts).

An overlay names the images (what ``kind load docker-image`` / ``minikube image load`` put on the node),
the storage class of every volume claim, and laptop-sized resources for the infrastructure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from highway.core.k8s import common as k


@dataclass(frozen=True)
class Overlay:
    name: str
    storage_class: str
    images: dict[str, str]  # short image name -> the reference the cluster uses
    # workload name -> container name -> resources (requests/limits); the base keeps production sizes
    sizes: dict[str, dict[str, dict[str, dict[str, str]]]] = field(default_factory=dict)
    env: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # workload -> container -> env
    notes: str = ""


def _res(cpu: str, memory: str, cpu_limit: str | None = None) -> dict[str, dict[str, str]]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit or cpu, "memory": memory}}


_LAPTOP_SIZES = {
    "kafka": {"kafka": _res("250m", "1Gi", "1")},
    "s3": {"s3": _res("100m", "512Mi", "1")},
    "elasticsearch": {"elasticsearch": _res("250m", "1536Mi", "1")},
    "postgres": {"postgres": _res("100m", "512Mi", "1")},
}
_LAPTOP_ENV = {"elasticsearch": {"elasticsearch": {"ES_JAVA_OPTS": "-Xms768m -Xmx768m"}}}

OVERLAYS = {
    "kind": Overlay(
        name="kind",
        storage_class="standard",  # kind's default class (local-path provisioner)
        images={"highway-spark": k.SPARK_IMAGE, "highway-airflow": k.AIRFLOW_IMAGE},
        sizes=_LAPTOP_SIZES,
        env=_LAPTOP_ENV,
        notes="images loaded with `kind load docker-image`; imagePullPolicy IfNotPresent uses them",
    ),
    "minikube": Overlay(
        name="minikube",
        storage_class="standard",  # minikube's default class (hostpath provisioner)
        images={"highway-spark": k.SPARK_IMAGE, "highway-airflow": k.AIRFLOW_IMAGE},
        sizes=_LAPTOP_SIZES,
        env=_LAPTOP_ENV,
        notes="images loaded with `minikube image load`; start minikube with --cpus 4 --memory 8g",
    ),
}


def kustomization(resources: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    } | extra


def _image_entries(overlay: Overlay) -> list[dict[str, str]]:
    out = []
    for short, ref in sorted(overlay.images.items()):
        name, _, tag = ref.rpartition(":")
        out.append({"name": short, "newName": name, "newTag": tag})
    return out


def _storage_patches(overlay: Overlay, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    patches = []
    for obj in objects:
        templates = obj.get("spec", {}).get("volumeClaimTemplates") or []
        if obj["kind"] != "StatefulSet" or not templates:
            continue
        ops = [
            {
                "op": "replace",
                "path": f"/spec/volumeClaimTemplates/{i}/spec/storageClassName",
                "value": overlay.storage_class,
            }
            for i in range(len(templates))
        ]
        patches.append(
            {"target": {"kind": "StatefulSet", "name": obj["metadata"]["name"]}, "patch": _dump(ops)}
        )
    return patches


def _size_patches(overlay: Overlay, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Strategic-merge patches (containers merge by name) for the workloads the overlay resizes."""
    patches = []
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] not in ("StatefulSet", "Deployment") or (
            name not in overlay.sizes and name not in overlay.env
        ):
            continue
        containers = []
        for container in obj["spec"]["template"]["spec"]["containers"]:
            cname = container["name"]
            entry: dict[str, Any] = {"name": cname}
            if cname in overlay.sizes.get(name, {}):
                entry["resources"] = overlay.sizes[name][cname]
            if cname in overlay.env.get(name, {}):
                entry["env"] = [{"name": n, "value": v} for n, v in overlay.env[name][cname].items()]
            if len(entry) > 1:
                containers.append(entry)
        if not containers:
            continue
        patch = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "metadata": {"name": name, "namespace": obj["metadata"]["namespace"]},
            "spec": {"template": {"spec": {"containers": containers}}},
        }
        patches.append({"target": {"kind": obj["kind"], "name": name}, "patch": _dump(patch)})
    return patches


def overlay_kustomization(
    overlay: Overlay, base_objects: list[dict[str, Any]], app_dirs: list[str]
) -> dict[str, Any]:
    return kustomization(
        ["../../base", *(f"../../apps/{d}" for d in app_dirs)],
        images=_image_entries(overlay),
        patches=_storage_patches(overlay, base_objects) + _size_patches(overlay, base_objects),
    )


def _dump(value: object) -> str:
    """A patch as a YAML document (kustomize reads it from the string), rendered as a readable block."""
    return yaml.safe_dump(value, sort_keys=False)
