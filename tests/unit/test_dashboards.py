"""Dashboards as code: the Grafana JSON, the provisioning files, the macro expander, publish."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard as SdkDashboard

from dashboards import grafana_query
from dashboards.catalog import DASHBOARDS
from dashboards.grafana import GRAFANA_JSON_DIR, PROVISIONING, build_all
from dashboards.macros import UnexpandedMacro, Variables, expand, sql_string
from dashboards.panels import KINDS
from jiandu.dashboards_cli import add_parser

MODELS = build_all()
PANEL_TYPES = {"stat", "timeseries", "barchart", "piechart", "table"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_sdk_decodes_every_dashboard_and_every_target_as_a_clickhouse_query():
    register_default_plugins()
    cogruntime.register_dataquery_variant(grafana_query.variant_config())
    for name, model in MODELS.items():
        decoded = SdkDashboard.from_json(model)
        assert decoded.uid == model["uid"] and f"{decoded.uid}.json" == name
        targets = [t for p in decoded.panels for t in p.targets]
        assert targets and all(isinstance(t, grafana_query.ClickHouseQuery) for t in targets)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dashboard_json_has_what_grafana_requires(name):
    model = MODELS[name]
    assert model["uid"].startswith("jiandu-") and CJK.search(model["title"])
    assert isinstance(model["schemaVersion"], int) and model["schemaVersion"] >= 36
    assert model["time"] == {"from": "now-2y", "to": "now"} and model["refresh"]
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    for p in model["panels"]:
        assert p["type"] in PANEL_TYPES and CJK.search(p["title"])
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24 and g["y"] >= 0
        assert p["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": "jiandu-clickhouse"}
        (target,) = p["targets"]
        assert target["datasource"] == p["datasource"] and target["refId"] == "A"
        assert target["editorType"] == "sql" and target["rawSql"].lstrip().upper().startswith(("SELECT", "WITH"))
        assert "${unit:sqlstring}" in target["rawSql"], "every panel is scoped to the selected unit"
        assert (target["format"], target["queryType"]) == (
            (0, "timeSeries") if p["type"] == "timeseries" else (1, "table"))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_templating_offers_the_unit_hierarchy_and_an_as_of_textbox(name):
    variables = {v["name"]: v for v in MODELS[name]["templating"]["list"]}
    assert set(variables) == {"unit", "as_of"}
    unit, as_of = variables["unit"], variables["as_of"]
    assert unit["type"] == "query" and unit["datasource"]["uid"] == "jiandu-clickhouse"
    assert unit["query"].lstrip().startswith("SELECT unit_id,") and unit["refresh"] == 1
    assert as_of["type"] == "textbox" and as_of["query"] == ""
    assert CJK.search(unit["label"]) and CJK.search(as_of["label"])


def test_drill_down_panels_link_to_the_clicked_child_and_hide_its_id():
    drills = [(m["uid"], p) for m in MODELS.values() for p in m["panels"]
              if any(o["matcher"]["options"] == "child_id" for o in p["fieldConfig"]["overrides"])]
    assert len(drills) >= 6
    for uid, p in drills:
        text = json.dumps(p["fieldConfig"], ensure_ascii=False)
        assert f"/d/{uid}?var-unit=${{__data.fields.child_id}}" in text
        assert "${__url_time_range}" in text and "${as_of:queryparam}" in text


def test_panel_specs_are_valid_and_titled_in_chinese():
    assert [d.title for d in DASHBOARDS] == ["全省总览", "问题线索与审查调查", "监督任务与整改进度", "数据报送与审计"]
    for d in DASHBOARDS:
        for p in d.panels:
            assert p.kind in KINDS and CJK.search(p.title)


def test_provisioning_points_at_the_data_source_and_the_json_folder():
    ds = yaml.safe_load((PROVISIONING / "datasources" / "datasource.yaml").read_text())["datasources"][0]
    assert ds["type"] == grafana_query.PLUGIN and ds["uid"] == grafana_query.DATASOURCE_UID
    for key in ("host", "port", "protocol", "username", "defaultDatabase"):
        assert re.fullmatch(r"\$\{CH_[A-Z]+\}", str(ds["jsonData"][key])), key
    assert ds["secureJsonData"]["password"] == "${CH_PASSWORD}", "no literal secrets"
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yaml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"] == GRAFANA_JSON_DIR


def test_build_writes_one_json_file_per_dashboard(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dashboards", "build", "--out", str(tmp_path)])
    assert args.func(args) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(MODELS)
    for name in written:
        assert json.loads((tmp_path / name).read_text(encoding="utf-8")) == MODELS[name]


V = Variables("gd.c01", dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
              dt.datetime(2025, 1, 2, tzinfo=dt.UTC), "2025-03-01 12:00:00")


def test_macros_expand_as_the_clickhouse_plugin_does():
    sql = ("SELECT $__timeInterval(t) WHERE $__timeFilter(t) AND $__timeFilter_ms(u) "
           "AND d >= toDate($__fromTime) AND d <= toDate($__toTime) AND i = $__interval_s "
           "AND u = ${unit:sqlstring} AND a = ${as_of:sqlstring}")
    assert expand(sql, V) == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 432 second) "
        "WHERE t >= toDateTime(1735689600) AND t <= toDateTime(1735776000) "
        "AND u >= fromUnixTimestamp64Milli(1735689600000) AND u <= fromUnixTimestamp64Milli(1735776000000) "
        "AND d >= toDate(toDateTime(1735689600)) AND d <= toDate(toDateTime(1735776000)) AND i = 432 "
        "AND u = 'gd.c01' AND a = '2025-03-01 12:00:00'")


def test_variable_values_cannot_break_out_of_their_string_literal():
    assert sql_string("x' OR 1=1 --\\") == "'x\\' OR 1=1 --\\\\'"
    hostile = Variables("a'b$__timeFilter(x)", V.start, V.end)
    assert expand("u = ${unit:sqlstring}", hostile) == "u = 'a\\'b$__timeFilter(x)'"


@pytest.mark.parametrize("sql", ["$__nope(x)", "${unit}", "$unit", "${other:sqlstring}", "$__nope"])
def test_unknown_macros_and_unquoted_variables_are_refused(sql):
    with pytest.raises(UnexpandedMacro):
        expand(f"SELECT 1 WHERE {sql}", V)


class _FakeGrafana(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, dict]] = []

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.calls.append(("GET", self.path, {}))
        self._reply(404, {"message": "folder not found"})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(("POST", self.path, {**body, "auth": self.headers.get("Authorization")}))
        if self.path == "/api/folders":
            self._reply(200, {"uid": body["uid"], "title": body["title"]})
        else:
            uid = body["dashboard"]["uid"]
            self._reply(200, {"uid": uid, "status": "success", "url": f"/d/{uid}"})

    def log_message(self, *args):
        pass


def test_publish_creates_the_folder_and_overwrites_every_dashboard():
    from dashboards.publish import publish

    server = HTTPServer(("127.0.0.1", 0), _FakeGrafana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        replies = publish(f"http://127.0.0.1:{server.server_port}", "glsa_test")
    finally:
        server.shutdown()
    assert [r["uid"] for r in replies] == [d.uid for d in DASHBOARDS]
    posts = [c for c in _FakeGrafana.calls if c[0] == "POST"]
    assert posts[0][1] == "/api/folders" and posts[0][2]["uid"] == "jiandu"
    for _, path, body in posts[1:]:
        assert path == "/api/dashboards/db" and body["overwrite"] is True
        assert body["folderUid"] == "jiandu" and body["auth"] == "Bearer glsa_test"
