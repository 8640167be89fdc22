"""`highway stack` through the real CLI and the Python API, against real processes.

Each test has its own state dir and port base (none shared with the session stack of conftest),
and always runs `down` afterwards, even when it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from highway.settings import Ports
from highway.stack import Stack

pytestmark = pytest.mark.integration

HIGHWAY = str(Path(sys.executable).with_name("highway"))
CLI_BASE = 24000  # kafka + s3 through the CLI
TAKEN_BASE = 23500  # only its s3 port is used, and blocked
PG_ES_BASE = 23000  # postgres + elasticsearch through the Python API


def stack_cli(home: Path, base: int, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    cmd = [HIGHWAY, "stack", "--home", str(home), "--port-base", str(base), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def alive(pid: int) -> bool:
    """Running and not a zombie waiting to be reaped by init."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return text[text.rindex(")") + 2] not in "ZX"


def processes_mentioning(home: Path) -> list[int]:
    """Pids of live processes whose command line names a path inside ``home``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                args = (entry / "cmdline").read_bytes().decode(errors="replace")
            except (FileNotFoundError, ProcessLookupError):
                continue
            if str(home) + "/" in args:
                found.append(int(entry.name))
    return found


def recorded_pids(home: Path) -> dict[str, int]:
    return {path.stem: int(path.read_text()) for path in (home / "run").glob("*.pid")}


def status_rows(home: Path, base: int) -> dict[str, list[str]]:
    """service -> cells of `highway stack status` (rich table drawn with box characters)."""
    rows = {}
    for line in ok(stack_cli(home, base, "status")).splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃|]", line) if cell.strip()]
        if cells and cells[0] in Stack.SERVICES:
            rows[cells[0]] = cells
    return rows


def s3_client(home: Path, base: int) -> Any:
    import boto3
    from botocore.config import Config

    creds = json.loads((home / "credentials.json").read_text())
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{Ports(base).of('s3')}",
        aws_access_key_id=creds["s3_access_key"],
        aws_secret_access_key=creds["s3_secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def reachable_home() -> Iterator[Path]:
    """A state dir the postgres and highway-es users can enter (pytest's tmp_path is mode 700)."""
    home = Path(tempfile.mkdtemp(prefix="highway-stack-test-"))
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def cli_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "stack"
    try:
        yield home
    finally:
        stack_cli(home, CLI_BASE, "down")


def test_up_again_status_stop_start_and_down(cli_home: Path) -> None:
    # a pid file left from "before a reboot" that now points at another program (this test's own pid)
    (cli_home / "run").mkdir(parents=True)
    (cli_home / "run" / "kafka.pid").write_text(f"{os.getpid()}\n")

    out = ok(stack_cli(cli_home, CLI_BASE, "up", "--only", "kafka,s3"))
    assert "stale pid file" in out
    assert alive(os.getpid())
    first = recorded_pids(cli_home)
    assert set(first) == {"kafka", "s3"} and all(alive(pid) for pid in first.values())
    assert json.loads((cli_home / "stack.json").read_text())["port_base"] == CLI_BASE
    creds_file = cli_home / "credentials.json"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    assert {"s3_access_key", "s3_secret_key", "pg_password"} <= set(json.loads(creds_file.read_text()))

    assert "already running" in ok(stack_cli(cli_home, CLI_BASE, "up", "--only", "kafka,s3"))
    assert recorded_pids(cli_home) == first

    rows = status_rows(cli_home, CLI_BASE)
    for name in ("kafka", "s3"):
        assert rows[name][-1] == "healthy" and rows[name][-2] == str(first[name])
    assert rows["postgres"][-1] == "stopped" and rows["elasticsearch"][-1] == "stopped"

    env = ok(stack_cli(cli_home, CLI_BASE, "env"))
    assert f"export HIGHWAY_KAFKA_BOOTSTRAP=127.0.0.1:{Ports(CLI_BASE).of('kafka')}" in env
    assert "export HIGHWAY_S3_SECRET_KEY=" in env

    s3 = s3_client(cli_home, CLI_BASE)
    s3.put_object(Bucket="lake", Key="probe/kept.txt", Body=b"still here")
    ok(stack_cli(cli_home, CLI_BASE, "stop", "s3"))
    assert not alive(first["s3"])
    assert status_rows(cli_home, CLI_BASE)["s3"][-1] == "stopped"
    ok(stack_cli(cli_home, CLI_BASE, "start", "s3"))
    second = recorded_pids(cli_home)
    assert second["s3"] != first["s3"] and second["kafka"] == first["kafka"]
    assert s3.get_object(Bucket="lake", Key="probe/kept.txt")["Body"].read() == b"still here"

    ok(stack_cli(cli_home, CLI_BASE, "down"))
    assert not [pid for pid in {*first.values(), *second.values()} if alive(pid)]
    assert not processes_mentioning(cli_home)
    assert not recorded_pids(cli_home)
    assert all(row[-1] == "stopped" for row in status_rows(cli_home, CLI_BASE).values())


def test_a_taken_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    home = tmp_path / "taken"
    port = Ports(TAKEN_BASE).of("s3")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            result = stack_cli(home, TAKEN_BASE, "up", "--only", "s3")
        assert result.returncode != 0
        message = " ".join(result.stderr.split())
        assert f"port {port}" in message and "s3" in message and "--port-base" in message
        assert "Traceback" not in result.stderr
        assert not recorded_pids(home)
    finally:
        stack_cli(home, TAKEN_BASE, "down")


def test_an_unknown_service_is_refused_with_the_allowed_names(tmp_path: Path) -> None:
    result = stack_cli(tmp_path / "unknown", TAKEN_BASE, "up", "--only", "kafka,redis")
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert "'redis'" in message and "kafka, s3, postgres, elasticsearch" in message
    assert "Traceback" not in result.stderr
    stopped = stack_cli(tmp_path / "unknown", TAKEN_BASE, "stop", "mysql")
    assert stopped.returncode != 0 and "'mysql'" in stopped.stderr


def uid_of(pid: int) -> int:
    line = next(
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:")
    )
    return int(line.split()[1])


def test_postgres_and_elasticsearch_come_up_healthy_as_their_own_users(
    reachable_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from elasticsearch import Elasticsearch

    from highway.adapters import postgres

    monkeypatch.setenv("HIGHWAY_PROBE_SECRET", "ours-not-the-nodes")  # what a user's shell may hold

    stack = Stack(reachable_home, PG_ES_BASE)
    try:
        stack.up(only=["postgres", "elasticsearch"])
        by_name = {row.name: row for row in stack.status()}
        for name in ("postgres", "elasticsearch"):
            assert by_name[name].healthy and by_name[name].state == "healthy" and by_name[name].pid
        assert by_name["kafka"].state == "stopped" and by_name["kafka"].pid is None

        conn = stack.connection()
        with postgres.connect(conn) as pg:  # the adapter every sink uses, against the stack's settings
            assert pg.execute("SELECT current_user, current_database()").fetchone() == ("highway", "highway")
        es = Elasticsearch(conn.es_url)
        (node,) = es.nodes.info(node_id="_local")["nodes"].values()
        assert node["version"].startswith("9.")
        es.index(index="probe", id="1", document={"word": "highway"}, refresh=True)
        assert es.search(index="probe", query={"term": {"_id": "1"}})["hits"]["total"]["value"] == 1
        if os.geteuid() == 0:
            import pwd

            assert uid_of(by_name["postgres"].pid or 0) == pwd.getpwnam("postgres").pw_uid
            assert uid_of(by_name["elasticsearch"].pid or 0) == pwd.getpwnam("highway-es").pw_uid
        # other users pass through the state dir but neither list it nor enter anything in it
        assert reachable_home.stat().st_mode & 0o777 == 0o711
        opened = {
            p.name: oct(p.lstat().st_mode & 0o777)
            for p in reachable_home.iterdir()
            if p.lstat().st_mode & 0o007
        }
        assert opened == {}, opened
        assert (reachable_home / "credentials.json").stat().st_mode & 0o777 == 0o600
        # the node gets only the environment it needs: none of ours (HIGHWAY_HOME and the like, credentials)
        environ = Path(f"/proc/{by_name['elasticsearch'].pid}/environ").read_bytes().split(b"\0")
        names = sorted(e.split(b"=", 1)[0].decode() for e in environ if e)
        assert not [n for n in names if n.startswith(("HIGHWAY_", "AWS_", "PG"))], names
        pids = [row.pid for row in by_name.values() if row.pid]
    finally:
        stack.down()
    assert not [pid for pid in pids if alive(pid)]
    assert not processes_mentioning(reachable_home)
