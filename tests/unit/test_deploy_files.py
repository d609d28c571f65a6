"""The production deployment files (issue 8).

No Docker engine runs here or in CI, so nothing is started: `docker-compose config` (Debian
package `docker-compose`) validates and renders the compose files with a throw-away env
file, and the rendered YAML is checked against what docs/deploy.md promises. The ClickHouse
cluster schema is compared with the migrations column by column and parsed by chDB's copy of
the ClickHouse SQL parser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "docker-compose.yml"
CLUSTER = ROOT / "deploy" / "cluster" / "docker-compose.cluster.yml"
CLUSTER_DIR = ROOT / "deploy" / "cluster" / "clickhouse"
CLUSTER_SCHEMA = CLUSTER_DIR / "cluster_schema.sql"
MIGRATIONS = ROOT / "projections" / "migrations"
ENV_EXAMPLE = ROOT / ".env.example"

# Throw-away values for the variables the compose files require (`${VAR:?…}`).
SECRETS = {
    "JIANDU_ADMIN_TOKEN": "test-admin-token-not-for-production-0001",
    "CLICKHOUSE_PASSWORD": "test-clickhouse-password-0002",
    "GRAFANA_CLICKHOUSE_PASSWORD": "test-grafana-reader-password-0003",
    "GRAFANA_ADMIN_PASSWORD": "test-grafana-admin-password-0004",
}
CLUSTER_SECRETS = {**SECRETS, "CLICKHOUSE_CLUSTER_SECRET": "test-cluster-secret-0005"}

JIANDU_ROLES = {"migrate": "migrate", "api": "api", "worker": "worker"}
ONE_SHOTS = {"migrate", "kafka-init", "clickhouse-schema"}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)
REQUIRED_REF = re.compile(r"\$\{[A-Z0-9_]+:\?[^}]*\}")
# scheme://user:password@… where user and password may be ${…} references.
URL_USERINFO = re.compile(r"\w+://(?:\$\{[^}]*\}|[^:@/]*):(?P<password>\$\{[^}]*\}|[^@/]*)@")


# --------------------------------------------------------------------------- helpers

def compose_command() -> list[str]:
    """`docker-compose` (v1, what CI installs), else the `docker compose` plugin."""
    exe = shutil.which("docker-compose")
    if exe:
        return [exe]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=60).returncode == 0:
        return [docker, "compose"]
    pytest.fail("docker-compose is not installed: `apt-get install -y docker-compose` "
                "(it validates the compose files without a Docker engine; CI installs it)",
                pytrace=False)


def compose_config(env_file: Path, *files: Path) -> subprocess.CompletedProcess:
    """Run `config` with only PATH and HOME from our environment, so a developer's own
    JIANDU_* exports (which compose prefers to the env file) cannot change the result."""
    args = [*compose_command(), "--env-file", str(env_file)]
    for f in files:
        args += ["-f", str(f)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([*args, "config"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def render(tmp: Path, values: dict[str, str], *files: Path) -> dict:
    result = compose_config(write_env(tmp / "test.env", values), *files)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # "KEY=value" form
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of every volume, from v1's short strings or v2's long form."""
    found = []
    for item in service.get("volumes") or []:
        if isinstance(item, dict):
            found.append((str(item.get("source", "")), str(item["target"])))
        else:
            parts = str(item).split(":")
            found.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return found


def image_tag(image: str) -> str:
    name = image.split("@", 1)[0]
    return name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""


def has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck") or {}
    test = check.get("test")
    return bool(test) and not check.get("disable") and test not in (["NONE"], "NONE")


def depends(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    return render(tmp_path_factory.mktemp("base"), SECRETS, BASE)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> dict:
    return render(tmp_path_factory.mktemp("cluster"), CLUSTER_SECRETS, BASE, CLUSTER)


# --------------------------------------------------------------------------- base compose

def test_services(base):
    assert {"kafka", "kafka-init", "clickhouse", "grafana", "migrate", "api", "worker"} <= set(base["services"])


@pytest.mark.parametrize("name, repository", [
    ("kafka", "apache/kafka"),
    ("clickhouse", "clickhouse/clickhouse-server"),
    ("grafana", "grafana/grafana"),
])
def test_infrastructure_images_are_pinned(base, name, repository):
    image = base["services"][name]["image"]
    tag = image_tag(image)
    assert image.startswith(repository + ":"), image
    assert re.fullmatch(r"\d+(\.\d+)+", tag), f"{name}: pin an explicit version, not {image!r}"


def test_every_third_party_image_is_pinned(cluster):
    for name, service in cluster["services"].items():
        image = service["image"]
        if image.startswith("jiandu"):
            continue
        assert re.fullmatch(r"\d+(\.\d+)+", image_tag(image)), f"{name}: {image} is not pinned"


def test_grafana_provisioning_and_clickhouse_plugin(base):
    grafana = base["services"]["grafana"]
    targets = {Path(source).relative_to(ROOT).as_posix() if source.startswith("/") else source: target
               for source, target in mounts(grafana)}
    assert targets.get("dashboards/provisioning") == "/etc/grafana/provisioning"
    assert "dashboards/build" in targets
    env = environment(grafana)
    plugins = env.get("GF_PLUGINS_PREINSTALL_SYNC", "") + env.get("GF_PLUGINS_PREINSTALL", "") \
        + env.get("GF_INSTALL_PLUGINS", "")
    assert "grafana-clickhouse-datasource@" in plugins, "pin the ClickHouse data source plugin"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]
    assert env["CH_PASSWORD"] == SECRETS["GRAFANA_CLICKHOUSE_PASSWORD"]
    assert env["CH_USER"] != "jiandu", "dashboards must use the read-only ClickHouse user"


@pytest.mark.parametrize("config_name", ["base", "cluster"])
def test_long_running_services_have_healthchecks(request, config_name):
    services = request.getfixturevalue(config_name)["services"]
    for name, service in services.items():
        if name in ONE_SHOTS:
            assert str(service.get("restart", "no")) == "no", f"{name} runs once"
            continue
        assert service.get("restart") == "unless-stopped", name
        assert has_healthcheck(service), f"{name} has no health check"


def test_api_health_check_uses_readyz(base):
    assert "/readyz" in " ".join(base["services"]["api"]["healthcheck"]["test"])


def test_jiandu_roles_configured_by_jiandu_variables(base):
    services = base["services"]
    images = {services[name]["image"] for name in JIANDU_ROLES}
    assert len(images) == 1, "migrate, api and worker run one image"
    for name, role in JIANDU_ROLES.items():
        service = services[name]
        assert service["command"] == [role]
        assert "build" in service
        assert not service.get("env_file"), "configuration comes from JIANDU_* variables"
        env = environment(service)
        assert env and all(key.startswith("JIANDU_") for key in env), sorted(env)
        assert env["JIANDU_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["JIANDU_CLICKHOUSE_URL"] == (
            f"http://jiandu:{SECRETS['CLICKHOUSE_PASSWORD']}@clickhouse:8123/jiandu")
        assert env["JIANDU_PARTITIONS"].isdigit()
    assert environment(services["api"])["JIANDU_ADMIN_TOKEN"] == SECRETS["JIANDU_ADMIN_TOKEN"]
    assert environment(services["api"])["JIANDU_API_HOST"] == "0.0.0.0"
    assert "JIANDU_ADMIN_TOKEN" not in environment(services["worker"])


def test_partition_count_is_one_setting(base):
    """Producers hash over JIANDU_PARTITIONS; kafka-init creates the topic with the same."""
    services = base["services"]
    counts = {environment(services[name])["JIANDU_PARTITIONS"]
              for name in ("kafka-init", "migrate", "api", "worker")}
    assert len(counts) == 1


def test_start_order(base):
    services = base["services"]
    assert depends(services["kafka-init"]) == {"kafka": "service_healthy"}
    assert depends(services["migrate"]) == {"clickhouse": "service_healthy"}
    for name in ("api", "worker"):
        assert depends(services[name]) == {"kafka-init": "service_completed_successfully",
                                           "migrate": "service_completed_successfully"}
    assert depends(services["grafana"])["clickhouse"] == "service_healthy"


def test_one_worker(base):
    """Two workers in one consumer group hold off (docs/deploy.md, "One worker")."""
    worker = base["services"]["worker"]
    assert int(worker["deploy"]["replicas"]) == 1
    assert not worker.get("ports")


def test_named_volumes_hold_the_state(base):
    volumes = set(base["volumes"])
    assert {"kafka-data", "clickhouse-data", "grafana-data", "api-data"} <= volumes
    wanted = {"kafka": "/var/lib/kafka/data", "clickhouse": "/var/lib/clickhouse",
              "grafana": "/var/lib/grafana", "api": "/var/lib/jiandu"}
    for name, target in wanted.items():
        sources = {source for source, t in mounts(base["services"][name]) if t == target}
        assert sources and sources <= volumes, f"{name}: {target} must be a named volume"


def test_ports_are_published_on_localhost_by_default(base):
    for name, service in base["services"].items():
        for port in service.get("ports") or []:
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond localhost"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_secret_stops_compose(tmp_path, missing):
    values = {k: v for k, v in SECRETS.items() if k != missing}
    result = compose_config(write_env(tmp_path / "test.env", values), BASE)
    assert result.returncode != 0
    assert missing in result.stderr


# --------------------------------------------------------------------------- the files as written

def raw_compose(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", [BASE, CLUSTER], ids=["base", "cluster"])
def test_no_literal_secrets(path):
    for name, service in raw_compose(path)["services"].items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_REF.fullmatch(value), f"{name}.{key} must be ${{VAR:?…}}, not a value"
            userinfo = URL_USERINFO.match(value)
            if userinfo:
                assert REQUIRED_REF.fullmatch(userinfo.group("password")), \
                    f"{name}.{key} carries a literal password"


def test_xml_configs_take_secrets_from_the_environment():
    for path in sorted((ROOT / "deploy").rglob("*.xml")):
        for element in ET.parse(path).iter():
            if element.tag in ("password", "secret"):
                assert element.get("from_env") and not (element.text or "").strip(), \
                    f"{path.relative_to(ROOT)}: <{element.tag}> must use from_env"


def test_bind_mounted_deploy_files_exist(cluster):
    for name, service in cluster["services"].items():
        for source, _ in mounts(service):
            if source.startswith(str(ROOT / "deploy")):
                assert Path(source).is_file(), f"{name} mounts missing {source}"


def compose_variables() -> set[str]:
    names = set()
    for path in (BASE, CLUSTER):
        text = path.read_text(encoding="utf-8").replace("$$", "")
        names |= set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    return names


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Z0-9_]+)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_env_example_lists_every_variable():
    listed = env_example()
    assert compose_variables() - set(listed) == set(), "add these to .env.example"
    for name in CLUSTER_SECRETS:
        assert listed[name] == "", f"{name} stays empty in .env.example so compose refuses to start"


def test_env_example_renders_once_secrets_are_filled(tmp_path):
    values = {**env_example(), **CLUSTER_SECRETS}
    render(tmp_path, values, BASE, CLUSTER)


TOPIC_SCRIPT = ROOT / "deploy" / "kafka" / "create-topics.sh"

# Stand-ins for Kafka's CLI tools: they log every call, remember the partitions a topic was
# created with, and describe a topic like Kafka 3.9 does (FAKE_PARTITIONS / FAKE_RF, when set,
# play an existing topic that disagrees).
FAKE_KAFKA_TOPICS = r"""#!/usr/bin/env bash
echo "kafka-topics.sh $*" >> "$CALLS"
args=("$@"); topic=""; partitions=""
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --topic) topic=${args[i+1]} ;;
        --partitions) partitions=${args[i+1]} ;;
    esac
done
if [[ " $* " == *" --create "* ]]; then echo "$partitions" > "$CALLS.$topic"; fi
if [[ " $* " == *" --describe "* ]]; then
    count=${FAKE_PARTITIONS:-$(cat "$CALLS.$topic")}
    printf 'Topic: %s\tTopicId: y\tPartitionCount: %s\tReplicationFactor: %s\tConfigs: \n' \
        "$topic" "$count" "${FAKE_RF:-3}"
    printf '\tTopic: %s\tPartition: 0\tLeader: 1\n' "$topic"
fi
"""
FAKE_KAFKA_CONFIGS = r"""#!/usr/bin/env bash
echo "kafka-configs.sh $*" >> "$CALLS"
"""


def run_topic_script(tmp_path: Path, partitions: str = "", rf: str = "") -> tuple[
        subprocess.CompletedProcess, str]:
    for name, body in (("kafka-topics.sh", FAKE_KAFKA_TOPICS), ("kafka-configs.sh", FAKE_KAFKA_CONFIGS)):
        (tmp_path / name).write_text(body, encoding="utf-8")
        (tmp_path / name).chmod(0o755)
    calls = tmp_path / "calls.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KAFKA_BIN": str(tmp_path),
           "CALLS": str(calls), "FAKE_PARTITIONS": partitions, "FAKE_RF": rf,
           "BOOTSTRAP_SERVERS": "k1:9092,k2:9092", "JIANDU_PARTITIONS": "12",
           "JIANDU_CONSUMER_GROUP": "jiandu-worker", "REPLICATION_FACTOR": "3",
           "MIN_INSYNC_REPLICAS": "2", "RETENTION_MS": "-1", "MAX_MESSAGE_BYTES": "33554432"}
    result = subprocess.run(["bash", str(TOPIC_SCRIPT)], env=env, capture_output=True,
                            text=True, timeout=60)
    return result, calls.read_text(encoding="utf-8") if calls.exists() else ""


def test_kafka_init_runs_the_mounted_script(base):
    init = base["services"]["kafka-init"]
    script = next(arg for arg in init["entrypoint"] if arg.endswith(".sh"))
    assert (str(TOPIC_SCRIPT), script) in mounts(init)


def test_kafka_topic_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(TOPIC_SCRIPT)], check=True, timeout=30)


def test_kafka_topic_script_creates_replicated_kept_topics(tmp_path):
    result, calls = run_topic_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok: jiandu.events partitions=12 replication=3 retention.ms=-1" in result.stdout
    assert "ok: jiandu.events.dlq partitions=1" in result.stdout
    assert "ok: jiandu-worker-__assignor-__leader partitions=1" in result.stdout
    create = next(line for line in calls.splitlines() if "--create" in line)
    for part in ("--topic jiandu.events ", "--partitions 12", "--replication-factor 3",
                 "min.insync.replicas=2", "retention.ms=-1", "--bootstrap-server k1:9092,k2:9092"):
        assert part in create
    assert any("kafka-configs.sh" in line and "--entity-name jiandu.events " in line
               for line in calls.splitlines()), "configs are re-applied to an existing topic"


@pytest.mark.parametrize("partitions, rf, message", [
    ("8", "3", "JIANDU_PARTITIONS"),   # producers would hash over the wrong count
    ("12", "1", "replication factor"),  # a single-copy topic on the cluster
])
def test_kafka_topic_script_refuses_a_mismatching_topic(tmp_path, partitions, rf, message):
    result, _ = run_topic_script(tmp_path, partitions=partitions, rf=rf)
    assert result.returncode != 0
    assert message in result.stderr


def test_dockerfile():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\S*\s*$", text, re.MULTILINE)
    assert re.search(r"pip install \.", text)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "run as a non-root user"
    assert re.search(r'^ENTRYPOINT \["jiandu"\]', text, re.MULTILINE)
    assert re.search(r'^CMD \["api"\]', text, re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", ".jiandu", ".env"} <= set(ignored)


# --------------------------------------------------------------------------- cluster override

def brokers(config: dict) -> dict[str, dict[str, str]]:
    return {name: environment(s) for name, s in config["services"].items()
            if s["image"].startswith("apache/kafka:")
            and "broker" in environment(s).get("KAFKA_PROCESS_ROLES", "")}


def test_cluster_has_three_kafka_brokers(cluster):
    nodes = brokers(cluster)
    assert len(nodes) == 3
    assert len({env["KAFKA_NODE_ID"] for env in nodes.values()}) == 3
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in nodes.values()}
    assert len(voters) == 1 and len(voters.pop().split(",")) == 3
    for name, env in nodes.items():
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_cluster_topics_are_replicated_and_kept(cluster):
    services = cluster["services"]
    init = environment(services["kafka-init"])
    assert init["REPLICATION_FACTOR"] == "3"
    assert init["MIN_INSYNC_REPLICAS"] == "2"
    assert init["RETENTION_MS"] == "-1"
    every_broker = {f"{name}:9092" for name in brokers(cluster)}
    assert set(init["BOOTSTRAP_SERVERS"].split(",")) == every_broker
    assert {name for name, cond in depends(services["kafka-init"]).items()
            if cond == "service_healthy"} == set(brokers(cluster))
    for name in JIANDU_ROLES:
        assert set(environment(services[name])["JIANDU_KAFKA_BOOTSTRAP"].split(",")) == every_broker


def xml_config(source: str) -> ET.Element:
    return ET.parse(source).getroot()


def test_cluster_clickhouse_replicas_and_keepers(cluster):
    services = cluster["services"]
    servers = {n: s for n, s in services.items()
               if s["image"].startswith("clickhouse/clickhouse-server:") and n not in ONE_SHOTS}
    keepers = {n: s for n, s in services.items() if s["image"].startswith("clickhouse/clickhouse-keeper:")}
    assert len(servers) == 3 and len(keepers) == 3

    replicas = set()
    for name, service in servers.items():
        files = {target: source for source, target in mounts(service)}
        assert service.get("hostname") == name, "replicas find each other by hostname"
        macros = xml_config(files["/etc/clickhouse-server/config.d/macros.xml"])
        assert macros.findtext("macros/replica") == name
        assert macros.findtext("interserver_http_host") == name
        replicas.add((macros.findtext("macros/shard"), name))
        cluster_xml = xml_config(files["/etc/clickhouse-server/config.d/cluster.xml"])
        remote = {r.findtext("host") for r in cluster_xml.iter("replica")}
        assert remote == set(servers)
        assert {n.findtext("host") for n in cluster_xml.iter("node")} == set(keepers)
        assert "/etc/clickhouse-server/users.d/cluster-profile.xml" in files
        assert set(keepers) <= set(depends(service))
    assert len(replicas) == 3

    ids = set()
    for name, service in keepers.items():
        files = {target: source for source, target in mounts(service)}
        keeper = xml_config(files["/etc/clickhouse-keeper/keeper_config.xml"])
        raft = {s.findtext("hostname"): s.findtext("id") for s in keeper.iter("server")}
        assert set(raft) == set(keepers)
        ids.add(environment(service)["KEEPER_SERVER_ID"])
        assert raft[name] == environment(service)["KEEPER_SERVER_ID"]
    assert len(ids) == 3


def test_cluster_schema_is_applied_before_migrate(cluster):
    services = cluster["services"]
    schema = services["clickhouse-schema"]
    assert any(target.endswith("cluster_schema.sql") for _, target in mounts(schema))
    assert depends(services["migrate"])["clickhouse-schema"] == "service_completed_successfully"


def test_cluster_profile_makes_inserts_durable_on_two_replicas():
    profile = xml_config(str(CLUSTER_DIR / "users.d" / "cluster-profile.xml"))
    assert profile.findtext("profiles/default/insert_quorum") == "2"
    assert profile.findtext("profiles/default/distributed_foreground_insert") == "1"


# --------------------------------------------------------------------------- cluster schema

def strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] if not line.strip().startswith("--") else ""
                     for line in sql.splitlines())


def statements(sql: str) -> list[str]:
    return [s.strip() for s in strip_comments(sql).split(";") if s.strip()]


def split_top_level(body: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(body):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [p.strip() for p in parts if p.strip()]


def tables(sql: str) -> dict[str, dict]:
    """name → {columns: [(name, type)], engine, indexes} for every CREATE TABLE, with the
    indexes later statements add (`ALTER TABLE t ADD INDEX IF NOT EXISTS …`)."""
    found = {}
    for stmt in statements(sql):
        added = re.match(r"ALTER TABLE (\w+) ADD INDEX IF NOT EXISTS (.*)", stmt, re.S)
        if added:
            found[added.group(1)]["indexes"].append(" ".join(f"INDEX {added.group(2)}".split()))
            continue
        head = re.match(r"CREATE TABLE IF NOT EXISTS (?:\w+\.)?(\w+)(?: ON CLUSTER \w+)?\s*\(", stmt)
        if not head:
            continue
        depth, end = 0, None
        for i in range(head.end() - 1, len(stmt)):
            depth += stmt[i] == "("
            depth -= stmt[i] == ")"
            if depth == 0:
                end = i
                break
        columns, indexes = [], []
        for item in split_top_level(stmt[head.end():end]):
            if item.upper().startswith("INDEX "):
                indexes.append(" ".join(item.split()))
                continue
            name, rest = item.split(None, 1)
            column_type = re.split(r"\s+(?:DEFAULT|MATERIALIZED|CODEC|COMMENT)\b", rest)[0]
            columns.append((name, " ".join(column_type.split())))
        engine = re.search(r"ENGINE\s*=\s*(\w+)", stmt[end:]).group(1)
        found[head.group(1)] = {"columns": columns, "engine": engine, "indexes": indexes,
                                "statement": stmt}
    return found


def views(sql: str) -> dict[str, str]:
    """name → normalised SELECT of every view still standing after the statements run."""
    found = {}
    for stmt in statements(sql):
        match = re.match(r"CREATE (?:MATERIALIZED )?VIEW IF NOT EXISTS (?:\w+\.)?(\w+).*?\bAS\s+(SELECT\b.*)",
                         stmt, re.DOTALL)
        if match:
            found[match.group(1)] = " ".join(match.group(2).split())
        dropped = re.match(r"DROP VIEW IF EXISTS (?:\w+\.)?(\w+)", stmt)
        if dropped:
            found.pop(dropped.group(1), None)
    return found


def migration_sql() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(MIGRATIONS.glob("*.sql")))


def test_cluster_schema_has_every_migration_table_with_the_same_columns():
    single = tables(migration_sql())
    clustered = tables(CLUSTER_SCHEMA.read_text(encoding="utf-8"))
    assert single, "no CREATE TABLE found in the migrations"
    for name, table in single.items():
        if f"{name}_local" in clustered:  # ledger, facts: replicated local + Distributed
            local, front = clustered[f"{name}_local"], clustered[name]
            assert local["engine"] == "Replicated" + table["engine"], name
            assert local["indexes"] == table["indexes"], name
            assert front["engine"] == "Distributed", name
            assert front["columns"] == table["columns"], f"{name} (Distributed) differs from the migration"
            assert local["columns"] == table["columns"], f"{name}_local differs from the migration"
        else:
            assert name in clustered, f"add {name} to {CLUSTER_SCHEMA.relative_to(ROOT)}"
            assert clustered[name]["engine"] == "Replicated" + table["engine"], name
            assert clustered[name]["columns"] == table["columns"], f"{name} differs from the migration"
    assert {"ledger", "facts"} <= {n for n in single if f"{n}_local" in clustered}
    assert clustered["schema_migrations"]["engine"] == "ReplicatedMergeTree"


def test_cluster_schema_folds_facts_exactly_like_the_migration():
    single = views(migration_sql())
    clustered = views(CLUSTER_SCHEMA.read_text(encoding="utf-8"))
    assert set(single) <= set(clustered)
    for name, select in single.items():
        expected = re.sub(r"\bFROM ledger\b", "FROM jiandu.ledger_local", select)
        assert clustered[name] == expected, f"{name} must use the migration's SELECT on ledger_local"
    assert "facts_source" in clustered


def test_cluster_schema_statements_run_on_the_cluster():
    for stmt in statements(CLUSTER_SCHEMA.read_text(encoding="utf-8")):
        assert " ON CLUSTER jiandu" in stmt, stmt.splitlines()[0]
    for name, table in tables(CLUSTER_SCHEMA.read_text(encoding="utf-8")).items():
        if table["engine"].startswith("Replicated"):
            assert f"'/clickhouse/tables/{{shard}}/jiandu/{name}', '{{replica}}'" in table["statement"], name
        elif table["engine"] == "Distributed":
            assert re.search(rf"Distributed\(jiandu, jiandu, {name}_local, cityHash64\(unit_id\)\)",
                             table["statement"]), name


PARSE_WITH_CHDB = """
import json, sys
import chdb
problems = []
for stmt in json.load(sys.stdin):
    try:
        chdb.query("EXPLAIN AST " + stmt, "CSV")
    except Exception as exc:
        problems.append(stmt.splitlines()[0] + " -> " + str(exc)[:300])
print(json.dumps(problems))
"""


def test_cluster_schema_parses_as_clickhouse_sql(tmp_path):
    """chDB ships the ClickHouse parser: EXPLAIN AST parses without executing (no Keeper here).
    In a child process, because chDB allows one data path per process."""
    stmts = statements(CLUSTER_SCHEMA.read_text(encoding="utf-8"))
    result = subprocess.run([sys.executable, "-c", PARSE_WITH_CHDB], input=json.dumps(stmts),
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


# --------------------------------------------------------------------------- packaging

def test_kafka_python_checksums_batches_in_c():
    """kafka-python falls back to a pure-Python CRC-32C (~0.26 s per MB, holding the GIL the
    worker needs in the embedded process) when the `crc32c` package is missing."""
    from kafka.record import util

    assert util.crc32c_c is not None and util._crc32c is util.crc32c_c
