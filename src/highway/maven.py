"""Resolve Java dependencies with Maven into highway's cache (never into the repo).

Each tool pom under ``tools/maven/<name>/pom.xml`` is resolved once into
``<cache>/<name>/<sha256 of the pom>`` with ``mvn dependency:copy-dependencies``; a marker file
says the copy finished, so a killed download is redone, not half-used.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from highway.errors import TerminalError
from highway.settings import cache_dir, repo_root


def pom_path(name: str) -> Path:
    return repo_root() / "tools" / "maven" / name / "pom.xml"


def resolved_dir(name: str) -> Path:
    digest = hashlib.sha256(pom_path(name).read_bytes()).hexdigest()[:12]
    return cache_dir() / name / digest


def resolve(name: str) -> Path:
    """Return the folder holding the jars of ``tools/maven/<name>/pom.xml``, downloading them once."""
    target = resolved_dir(name)
    if (target / ".complete").exists():
        return target
    if shutil.which("mvn") is None:
        raise TerminalError(
            "Maven ('mvn') is needed to download the Java dependencies: apt-get install maven"
        )
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [
        "mvn", "-q", "-B", "-f", str(pom_path(name)), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={tmp}",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise TerminalError(f"Maven could not resolve tools/maven/{name}/pom.xml:\n{tail}")
    (tmp / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
