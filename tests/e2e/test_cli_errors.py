"""Bad input through the real CLI: one clear line naming what is wrong, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HIGHWAY = str(Path(sys.executable).with_name("highway"))


def _run(*args: str, catalog: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if catalog is not None:
        env["HIGHWAY_CATALOG"] = str(catalog)
    return subprocess.run([HIGHWAY, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_unknown_app_is_named_with_the_known_ones() -> None:
    done = _run("run", "no_such_app")
    assert done.returncode == 2
    assert "'no_such_app'" in done.stderr and "bronze_shop_events" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_bad_catalog_entry_names_file_key_value_and_allowed(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "spark_apps" / "catalog" / "bronze_shop_events.yaml"
    text = shipped.read_text().replace("starting_offsets: earliest", "starting_offsets: yesterday")
    (tmp_path / "bronze_shop_events.yaml").write_text(text)
    done = _run("run", "bronze_shop_events", catalog=tmp_path)
    assert done.returncode == 2
    assert "bronze_shop_events.yaml: key 'source.starting_offsets' has value 'yesterday'" in done.stderr
    assert "allowed: one of earliest, latest" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_produce_refuses_a_ratio_above_one() -> None:
    done = _run("produce", "--bad-ratio", "2")
    assert done.returncode != 0
    assert "--bad-ratio" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_status_refuses_an_unknown_runtime() -> None:
    done = _run("status", "--runtime", "nomad")
    assert done.returncode == 2
    assert "parameter '--runtime' has value 'nomad'; allowed: local, kubernetes" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
