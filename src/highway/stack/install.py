"""Getting the services' software onto the machine, once, into the cache (keyed by version or hash).

Jars and the Elasticsearch zip come through Maven (``mvn`` and its local repository); PostgreSQL
comes from Debian. A finished install is published by renaming a temporary directory, so a
crashed or concurrent install never leaves a half-filled cache entry behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from highway.errors import StackError
from highway.stack.process import run_once

JVM_ROOT = Path("/usr/lib/jvm")
POSTGRES_ROOT = Path("/usr/lib/postgresql")


# --- pure helpers ---------------------------------------------------------------------------


def pom_key(pom_text: bytes) -> str:
    """Cache key of a resolved pom: its content hash."""
    return hashlib.sha256(pom_text).hexdigest()[:12]


def java_major(release_text: str) -> int | None:
    """Major version from a JDK's ``release`` file (``JAVA_VERSION="25.0.3"`` -> 25; ``"1.8.0"`` -> 8)."""
    match = re.search(r'^JAVA_VERSION="([0-9]+)(?:\.([0-9]+))?', release_text, re.MULTILINE)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def highest_version(names: Sequence[str]) -> str | None:
    """The highest numeric version among directory names (``["13", "15", "9.6"]`` -> ``"15"``)."""

    def key(name: str) -> tuple[int, ...]:
        return tuple(int(part) for part in name.split("."))

    numeric = [name for name in names if re.fullmatch(r"[0-9]+(\.[0-9]+)*", name)]
    return max(numeric, key=key) if numeric else None


def zip_member_target(name: str, strip: int) -> str | None:
    """Path of a zip member below ``strip`` leading folders; None for the stripped folders themselves."""
    parts = [part for part in name.split("/") if part]
    if ".." in parts or len(parts) <= strip:
        return None
    return "/".join(parts[strip:])


# --- cache plumbing -------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _publish(tmp: Path, dest: Path) -> None:
    tmp.chmod(0o755)
    (tmp / ".complete").touch()
    tmp.rename(dest)


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is not on PATH; install it (Debian: apt-get install -y maven)")
    return mvn


def resolve_pom(pom: Path, cache_root: Path, announce: Callable[[str], None]) -> Path:
    """Runtime jars of ``pom`` in ``cache_root/<pom hash>``, resolved with Maven the first time."""
    if not pom.exists():
        raise StackError(
            f"missing {pom}: the stack needs the repo's tools/ (set HIGHWAY_REPO to the checkout)"
        )
    dest = cache_root / pom_key(pom.read_bytes())
    with _locked(cache_root / ".lock"):
        if (dest / ".complete").exists():
            return dest
        announce(f"resolving {pom.parent.name} jars with Maven into {dest} (once per pom)")
        tmp = Path(tempfile.mkdtemp(prefix=".resolving-", dir=cache_root))
        argv = [_mvn(), "-q", "-B", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies"]
        run_once([*argv, "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"], f"resolving {pom.name}")
        _publish(tmp, dest)
    return dest


def maven_artifact(coordinates: str, dest_dir: Path, announce: Callable[[str], None]) -> Path:
    """One artifact (``group:artifact:version[:type[:classifier]]``) copied into ``dest_dir`` once."""
    with _locked(dest_dir / ".lock"):
        found = [path for path in dest_dir.iterdir() if path.is_file() and not path.name.startswith(".")]
        if (dest_dir / ".complete").exists() and found:
            return found[0]
        for stale in found:
            stale.unlink()
        announce(f"downloading {coordinates} with Maven (once)")
        argv = [_mvn(), "-q", "-B", "-Dstyle.color=never", "dependency:copy", f"-Dartifact={coordinates}"]
        run_once([*argv, f"-DoutputDirectory={dest_dir}"], f"downloading {coordinates}")
        (dest_dir / ".complete").touch()
        found = [path for path in dest_dir.iterdir() if path.is_file() and not path.name.startswith(".")]
    if len(found) != 1:
        raise StackError(f"expected one file from {coordinates} in {dest_dir}, found {found}")
    return found[0]


def unzip_once(archive: Path, dest: Path, announce: Callable[[str], None], strip: int = 1) -> Path:
    """Unpack ``archive`` into ``dest`` (keeping exec bits, readable by every user) unless already there."""
    with _locked(dest.parent / f".{dest.name}.lock"):
        if (dest / ".complete").exists():
            return dest
        announce(f"unpacking {archive.name} into {dest} (once)")
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                _extract_member(zipped, info, tmp, strip)
        _publish(tmp, dest)
    return dest


def _extract_member(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path, strip: int) -> None:
    target = zip_member_target(info.filename, strip)
    if target is None:
        return
    path = root / target
    if info.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipped.open(info) as src, path.open("wb") as out:
        shutil.copyfileobj(src, out)
    unix_mode = (info.external_attr >> 16) & 0o777
    path.chmod(0o755 if unix_mode & stat.S_IXUSR else 0o644)


# --- machine software -----------------------------------------------------------------------


def java_binary() -> str:
    """The Java for Kafka and s3proxy: JAVA_HOME's, else the one on PATH (17+)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "no java on PATH: install a JDK 17+ (Debian: apt-get install -y openjdk-17-jdk-headless)"
        )
    return java


def find_jdk(min_major: int) -> Path:
    """The newest JDK under /usr/lib/jvm with major >= ``min_major`` (ES_JAVA_HOME wins if set)."""
    override = os.environ.get("ES_JAVA_HOME")
    if override:
        return Path(override)
    candidates: list[tuple[int, Path]] = []
    for home in sorted(JVM_ROOT.glob("*")) if JVM_ROOT.is_dir() else []:
        release = home / "release"
        if (home / "bin" / "java").exists() and release.exists() and not home.is_symlink():
            major = java_major(release.read_text(errors="replace"))
            if major is not None and major >= min_major:
                candidates.append((major, home))
    if not candidates:
        raise StackError(
            f"Elasticsearch needs Java {min_major}+ and none was found under {JVM_ROOT}: "
            f"install one (e.g. a Temurin {min_major}+ JDK) or set ES_JAVA_HOME"
        )
    return max(candidates)[1]


def postgres_bin_dir(announce: Callable[[str], None]) -> Path:
    """``/usr/lib/postgresql/<highest>/bin``, installing Debian's PostgreSQL when there is none."""
    found = _postgres_versions()
    if not found:
        if os.geteuid() != 0:
            raise StackError("PostgreSQL is not installed: run `sudo apt-get install -y postgresql`")
        announce("PostgreSQL not found: installing Debian's package (apt-get install -y postgresql)")
        run_once(["apt-get", "update"], "apt-get update", timeout=600)
        run_once(["apt-get", "install", "-y", "postgresql"], "apt-get install postgresql", timeout=900)
        found = _postgres_versions()
    version = highest_version(found)
    if version is None:
        raise StackError(f"no PostgreSQL with bin/initdb under {POSTGRES_ROOT}")
    return POSTGRES_ROOT / version / "bin"


def _postgres_versions() -> list[str]:
    if not POSTGRES_ROOT.is_dir():
        return []
    return [path.name for path in POSTGRES_ROOT.iterdir() if (path / "bin" / "initdb").exists()]


def ensure_system_user(name: str) -> None:
    """Create a system user without a home (root only; as non-root we run as ourselves)."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(name)
    except KeyError:
        run_once(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], "useradd")
