"""A grafana-foundation-sdk data query for the grafana-clickhouse-datasource plugin.

The SDK ships typed queries for Prometheus, Loki and others but not ClickHouse, so this is
one more `Dataquery` variant in the SDK's own shape: a model with `to_json` and a builder.
Field names follow the plugin's `CHSqlQuery` (src/types/sql.ts).
"""

from __future__ import annotations

import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE_UID = "jiandu-clickhouse"  # fixed in provisioning/datasources/datasource.yaml
DATASOURCE = dashboard.DataSourceRef(type_val=PLUGIN, uid=DATASOURCE_UID)

# sqlutil.FormatQueryOption in grafana-plugin-sdk-go, which the plugin's backend uses.
FORMAT_TIME_SERIES, FORMAT_TABLE = 0, 1


class ClickHouseQuery(cogvariants.Dataquery):
    """One raw-SQL query of the ClickHouse data source."""

    def __init__(self, ref_id: str = "A", raw_sql: str = "", query_type: str = "table",
                 format_: int = FORMAT_TABLE,
                 datasource: dashboard.DataSourceRef | None = None) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.query_type = query_type
        self.format_ = format_
        self.datasource = datasource or DATASOURCE

    def to_json(self) -> dict[str, object]:
        return {"refId": self.ref_id, "datasource": self.datasource.to_json(),
                "editorType": "sql", "queryType": self.query_type, "format": self.format_,
                "rawSql": self.raw_sql}

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> typing.Self:
        return cls(data.get("refId", "A"), data.get("rawSql", ""), data.get("queryType", "table"),
                   data.get("format", FORMAT_TABLE),
                   dashboard.DataSourceRef.from_json(data.get("datasource") or DATASOURCE.to_json()))


def variant_config() -> cogruntime.DataqueryConfig:
    """Let the SDK decode this plugin's targets (`cogruntime.register_dataquery_variant`)."""
    return cogruntime.DataqueryConfig(identifier=PLUGIN, from_json_hook=ClickHouseQuery.from_json)


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    """Builds a `ClickHouseQuery` the way the SDK's generated builders do."""

    def __init__(self) -> None:
        self._internal = ClickHouseQuery()

    def build(self) -> ClickHouseQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> typing.Self:
        self._internal.ref_id = ref_id
        return self

    def raw_sql(self, raw_sql: str) -> typing.Self:
        self._internal.raw_sql = raw_sql
        return self

    def time_series(self) -> typing.Self:
        self._internal.query_type, self._internal.format_ = "timeSeries", FORMAT_TIME_SERIES
        return self

    def table(self) -> typing.Self:
        self._internal.query_type, self._internal.format_ = "table", FORMAT_TABLE
        return self
