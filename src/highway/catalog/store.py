"""Read catalog files from disk (the I/O half of the catalog)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from highway.catalog.model import AppSpec, BronzeSpec
from highway.catalog.parse import parse
from highway.errors import CatalogError


def catalog_dir() -> Path:
    """``HIGHWAY_CATALOG`` or the repo's ``spark_apps/catalog``."""
    env = os.environ.get("HIGHWAY_CATALOG")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "spark_apps" / "catalog"


def load(path: Path) -> AppSpec:
    """Load and validate one catalog file; the app name must match the file name."""
    return load_with_text(path)[0]


def load_with_text(path: Path) -> tuple[AppSpec, str]:
    """``load``, and the file's text as read (a Kubernetes deploy ships the entry verbatim)."""
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise CatalogError(
            str(path), "<yaml>", where, f"valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    except OSError as exc:
        raise CatalogError(str(path), "<file>", str(path), f"a readable file ({exc.strerror})") from None
    spec = parse(data, str(path))
    if spec.name != path.stem:
        raise CatalogError(str(path), "name", spec.name, f"the file's name, '{path.stem}'")
    return spec, text


def load_all(directory: Path | None = None) -> dict[str, AppSpec]:
    directory = directory or catalog_dir()
    return {p.stem: load(p) for p in sorted(directory.glob("*.yaml"))}


def get(name: str, directory: Path | None = None) -> AppSpec:
    return get_with_text(name, directory)[0]


def get_with_text(name: str, directory: Path | None = None) -> tuple[AppSpec, str]:
    """An app by name (an unknown one is refused naming the known ones), with its entry's text."""
    directory = directory or catalog_dir()
    path = directory / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "(none)"
        raise CatalogError(str(directory), "app", name, f"an app in the catalog: {known}")
    return load_with_text(path)


def get_bronze(name: str, directory: Path | None = None) -> BronzeSpec:
    """An app that reads Kafka (what ``highway produce`` writes to); others are refused by name."""
    spec = get(name, directory)
    if not isinstance(spec, BronzeSpec):
        bronze = sorted(n for n, s in load_all(directory).items() if isinstance(s, BronzeSpec))
        raise CatalogError(
            f"{name}.yaml", "kind", spec.kind, f"a bronze app (reads Kafka): {', '.join(bronze) or '(none)'}"
        )
    return spec
