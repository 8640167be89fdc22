"""The stack's pure decisions and renderers, with plain values: no service, no process, no mock."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from highway.errors import StackError
from highway.stack.install import highest_version, java_major, pom_key, zip_member_target
from highway.stack.process import (
    PidState,
    belongs,
    can_traverse,
    classify_pid,
    identity,
    parse_pid,
    parse_start_time,
    parse_stat,
)
from highway.stack.render import (
    KAFKA_MAX_MESSAGE_BYTES,
    elasticsearch_yml,
    kafka_cluster_id,
    kafka_server_properties,
    render_properties,
    s3proxy_properties,
)
from highway.stack.state import (
    CREDENTIAL_KEYS,
    SERVICES,
    Layout,
    new_credentials,
    parse_only,
    select_services,
    service_ports,
)


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


# --- ports and service names ----------------------------------------------------------------


def test_ports_are_base_plus_fixed_offsets_and_all_distinct() -> None:
    ports = service_ports(24000)
    assert ports["kafka"] == {"kafka": 24092, "kafka_controller": 24093}
    assert ports["s3"] == {"s3": 24080}
    assert ports["postgres"] == {"postgres": 24432}
    assert ports["elasticsearch"] == {"elasticsearch": 24200, "elasticsearch_transport": 24300}
    every = [port for by_label in ports.values() for port in by_label.values()]
    assert len(every) == len(set(every))


def test_two_port_bases_500_apart_do_not_overlap() -> None:
    first = {p for labels in service_ports(23000).values() for p in labels.values()}
    second = {p for labels in service_ports(23500).values() for p in labels.values()}
    assert not first & second


def test_services_come_in_start_order_whatever_order_they_are_named() -> None:
    assert select_services(None) == list(SERVICES)
    assert select_services(["s3", "kafka"]) == ["kafka", "s3"]
    assert parse_only(" s3 , kafka ") == ["kafka", "s3"]
    assert parse_only(None) is None


def test_an_unknown_service_is_named_with_the_allowed_ones() -> None:
    with pytest.raises(StackError) as caught:
        parse_only("kafka,redis")
    assert "'redis'" in str(caught.value)
    assert "kafka, s3, postgres, elasticsearch" in str(caught.value)
    with pytest.raises(StackError):
        parse_only(" , ")


# --- pid files and processes ----------------------------------------------------------------


def test_pid_file_states() -> None:
    marker = "/var/lib/highway/a/kafka/server.properties"
    ours = ["java", "-cp", "x/*", "kafka.Kafka", marker]
    assert classify_pid(None, False, [], marker) is PidState.NO_PID_FILE
    assert classify_pid(123, False, [], marker) is PidState.GONE
    assert classify_pid(123, True, ["bash"], marker) is PidState.FOREIGN
    assert classify_pid(123, True, ours, marker) is PidState.RUNNING


def test_a_neighbouring_state_dir_is_not_ours() -> None:
    assert not belongs(["java", "/var/lib/highway/ab/kafka/server.properties"], "/lib/highway/ab/kafka")
    assert not belongs(["postgres", "-D", "/srv/b/postgres/data2"], "/srv/b/postgres/data")
    assert belongs(["java", "-Djava.io.tmpdir=/srv/b/elasticsearch/tmp"], "/srv/b/elasticsearch/tmp")
    assert belongs(["postgres", "-D", "/srv/b/postgres/data"], "/srv/b/postgres/data")


def test_parse_stat_survives_odd_process_names() -> None:
    text = "4242 (my (odd) name) S 1 4240 4240 0 -1 4194560 100 0 0 0"
    assert parse_stat(text) == ("S", 4240)
    assert parse_stat("7 (java) Z 1 7 7 0")[0] == "Z"


def test_a_process_identity_is_the_boot_and_the_start_time() -> None:
    # /proc/<pid>/stat of a real process: field 22 (the 20th after the name) is its start time in ticks
    text = (
        "31337 (python3 (x)) S 1 31337 31337 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 1 "
        "18446744073709551615"
    )
    assert parse_start_time(text) == 987654
    assert identity("6f1c-boot\n", text) == "6f1c-boot 987654"
    assert identity("6f1c-boot", text) != identity("a later boot", text)  # same pid and ticks, a reboot


def test_parse_pid_reads_the_first_line_only() -> None:
    assert parse_pid("1234\n/srv/pg/data\n1700000000\n5432\n") == 1234  # postmaster.pid layout
    assert parse_pid("  99 \n") == 99
    for junk in ("", "\n", "abc", "-5", "0"):
        assert parse_pid(junk) is None


def test_traversal_follows_owner_then_group_then_other_bits() -> None:
    private = stat.S_IFDIR | 0o700
    assert not can_traverse(private, owner_uid=0, owner_gid=0, uid=101, gids=[104])
    assert can_traverse(private, owner_uid=101, owner_gid=0, uid=101, gids=[104])
    assert can_traverse(stat.S_IFDIR | 0o710, owner_uid=0, owner_gid=104, uid=101, gids=[104])
    assert can_traverse(stat.S_IFDIR | 0o755, owner_uid=0, owner_gid=0, uid=101, gids=[104])
    assert can_traverse(private, owner_uid=5, owner_gid=5, uid=0, gids=[0])


# --- installs -------------------------------------------------------------------------------


def test_java_major_from_release_files() -> None:
    assert java_major('IMPLEMENTOR="Eclipse Adoptium"\nJAVA_VERSION="25.0.3"\n') == 25
    assert java_major('JAVA_VERSION="17.0.15"') == 17
    assert java_major('JAVA_VERSION="1.8.0_392"') == 8
    assert java_major("nothing here") is None


def test_highest_postgres_version_is_numeric_not_alphabetic() -> None:
    assert highest_version(["9.6", "15", "13", "README"]) == "15"
    assert highest_version(["9", "10"]) == "10"
    assert highest_version([]) is None


def test_zip_members_lose_their_top_folder_and_never_escape() -> None:
    assert zip_member_target("elasticsearch-9.2.0/bin/elasticsearch", 1) == "bin/elasticsearch"
    assert zip_member_target("elasticsearch-9.2.0/", 1) is None
    assert zip_member_target("elasticsearch-9.2.0/../../etc/passwd", 1) is None


def test_pom_cache_key_changes_with_the_pom() -> None:
    key = pom_key(b"<project>4.2.0</project>")
    assert len(key) == 12 and key == pom_key(b"<project>4.2.0</project>")
    assert key != pom_key(b"<project>4.2.1</project>")


# --- configuration files --------------------------------------------------------------------


def test_properties_escape_keys_and_values_and_keep_order() -> None:
    text = render_properties({"b.key": True, "a key": "C:\\dir", "n": 3}, "header line")
    assert text.splitlines() == ["# header line", "b.key=true", "a\\ key=C:\\\\dir", "n=3"]


def test_kafka_broker_keeps_everything_and_takes_big_records() -> None:
    props = parse_properties(render_properties(kafka_server_properties(Path("/s/kafka/data"), 24092, 24093)))
    assert props["message.max.bytes"] == props["replica.fetch.max.bytes"] == str(4 * 1024 * 1024)
    assert KAFKA_MAX_MESSAGE_BYTES > 1024 * 1024  # apps cut at 1 MiB and must still read bigger ones
    assert props["log.retention.hours"] == "-1" and props["log.retention.ms"] == "-1"
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "4"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:24092,CONTROLLER://127.0.0.1:24093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:24093"
    assert props["log.dirs"] == "/s/kafka/data"


def test_kafka_cluster_id_looks_like_kafkas_uuid() -> None:
    ident = kafka_cluster_id(bytes(range(16)))
    assert len(ident) == 22 and "=" not in ident
    assert not kafka_cluster_id(b"\xfb" + bytes(15)).startswith("-")
    with pytest.raises(ValueError):
        kafka_cluster_id(b"short")


def test_s3proxy_config_uses_the_filesystem_backend_with_signatures() -> None:
    props = s3proxy_properties(24080, Path("/s/s3"), "HWKEY", "secret")
    assert props["jclouds.provider"] == "filesystem-nio2"
    assert props["jclouds.filesystem.basedir"] == "/s/s3"
    assert props["s3proxy.endpoint"] == "http://127.0.0.1:24080"
    assert props["s3proxy.authorization"] == "aws-v2-or-v4"
    assert (props["s3proxy.identity"], props["s3proxy.credential"]) == ("HWKEY", "secret")


def test_elasticsearch_is_single_node_on_loopback_without_security() -> None:
    settings = yaml.safe_load(elasticsearch_yml(Path("/s/elasticsearch"), 24200, 24300))
    assert settings["discovery.type"] == "single-node"
    assert settings["network.host"] == "127.0.0.1"
    assert (settings["http.port"], settings["transport.port"]) == (24200, 24300)
    assert settings["xpack.security.enabled"] is False
    assert settings["cluster.routing.allocation.disk.threshold_enabled"] is False
    assert settings["path.data"] == "/s/elasticsearch/data"


# --- credentials and stack.json (files only) ------------------------------------------------


def test_new_credentials_fill_exactly_the_missing_keys() -> None:
    made = new_credentials(lambda n: "ab" * n)
    assert set(made) == set(CREDENTIAL_KEYS)
    assert made["s3_access_key"] == "HW" + "AB" * 8
    assert set(new_credentials(lambda n: "x" * n, ["pg_password"])) == {"pg_password"}


def test_credentials_are_generated_once_with_mode_600(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    layout.create()
    first = layout.ensure_credentials()
    assert layout.ensure_credentials() == first
    path = tmp_path / "home" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {"s3_access_key", "s3_secret_key", "pg_password"} <= set(json.loads(path.read_text()))


def test_a_state_dir_keeps_its_port_base(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.write_stack_json(24000)
    assert json.loads((tmp_path / "stack.json").read_text())["port_base"] == 24000
    layout.write_stack_json(24000)
    with pytest.raises(StackError, match="--port-base 24000"):
        layout.write_stack_json(25000)
