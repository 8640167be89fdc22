"""`highway manifests render` through the real CLI: the committed k8s/ matches the catalog, drift is caught,
and a bad catalog entry is refused before anything is written."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

HIGHWAY = str(Path(sys.executable).with_name("highway"))
REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "spark_apps" / "catalog"


def _run(*args: str, catalog: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if catalog is not None:
        env["HIGHWAY_CATALOG"] = str(catalog)
    return subprocess.run([HIGHWAY, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_committed_manifests_match_the_catalog() -> None:
    done = _run("manifests", "render", "--check")
    assert done.returncode == 0, done.stderr
    assert "match the catalog" in done.stdout


def test_render_into_an_empty_dir_gives_the_committed_files(tmp_path: Path) -> None:
    done = _run("manifests", "render", "--out", str(tmp_path / "k8s"))
    assert done.returncode == 0, done.stderr
    committed = {p for p in _tree(REPO / "k8s") if p.endswith(".yaml")}
    assert _tree(tmp_path / "k8s") == committed
    _, mismatch, errors = filecmp.cmpfiles(REPO / "k8s", tmp_path / "k8s", sorted(committed), shallow=False)
    assert mismatch == [] and errors == []
    again = _run("manifests", "render", "--out", str(tmp_path / "k8s"))
    assert "0 written, 0 removed" in again.stdout


def test_check_names_a_hand_edited_file_and_a_stale_app(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    shutil.copytree(REPO / "k8s", out)
    edited = out / "apps" / "bronze-shop-events" / "statefulset.yaml"
    edited.write_text(edited.read_text().replace("replicas: 1", "replicas: 2"))
    stale = out / "apps" / "old-app" / "statefulset.yaml"
    stale.parent.mkdir()
    stale.write_text((out / "apps" / "bronze-shop-events" / "service.yaml").read_text())
    done = _run("manifests", "render", "--check", "--out", str(out))
    assert done.returncode == 2
    assert "apps/bronze-shop-events/statefulset.yaml" in done.stderr
    assert "apps/old-app/statefulset.yaml" in done.stderr
    assert "highway manifests render" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    fixed = _run("manifests", "render", "--out", str(out))
    assert fixed.returncode == 0
    assert not stale.parent.exists()
    assert _run("manifests", "render", "--check", "--out", str(out)).returncode == 0


def test_bad_catalog_entry_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(SHIPPED, catalog)
    entry = catalog / "silver_shop_events.yaml"
    entry.write_text(entry.read_text().replace('driver_cpu: "1"', "driver_cpu: lots"))
    out = tmp_path / "k8s"
    done = _run("manifests", "render", "--out", str(out), catalog=catalog)
    assert done.returncode == 2
    assert "key 'resources.driver_cpu' has value 'lots'" in done.stderr
    assert "Kubernetes CPU quantity" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not out.exists()
