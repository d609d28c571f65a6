"""The `jiandu` command (DESIGN §4)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from jiandu.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "api_port", None) is not None:
        overrides["api_port"] = args.api_port
    if getattr(args, "broker_port", None) is not None:
        overrides["broker_port"] = args.broker_port
    try:
        return Settings(**overrides)
    except ValidationError as exc:  # a JIANDU_* variable: name it, as an operator set it
        raise ValueError("配置有误 (invalid configuration): " + "; ".join(
            f"JIANDU_{'_'.join(map(str, e['loc'])).upper()}={e['input']!r}: {e['msg']}" for e in exc.errors())) from None


def cmd_up(args: argparse.Namespace) -> int:
    from jiandu.runtime import Platform, run_foreground

    return run_foreground(Platform(_settings(args), demo=args.demo))


def _server(args: argparse.Namespace, with_api: bool, with_worker: bool) -> int:
    from jiandu.runtime import Platform, run_foreground

    settings = _settings(args)
    if not settings.kafka_bootstrap:
        raise ValueError("需要 JIANDU_KAFKA_BOOTSTRAP (production processes use an external broker; "
                         "`jiandu up` runs everything embedded)")
    return run_foreground(Platform(settings, with_api=with_api, with_worker=with_worker))


def cmd_worker(args: argparse.Namespace) -> int:
    return _server(args, with_api=False, with_worker=True)


def cmd_api(args: argparse.Namespace) -> int:
    return _server(args, with_api=True, with_worker=False)


def cmd_migrate(args: argparse.Namespace) -> int:
    from projections.store import ClickHouseStore

    store = ClickHouseStore(_settings(args).store_url)
    applied = store.migrate()
    print(f"已应用迁移 applied: {', '.join(applied) or '(none, schema up to date)'}")
    return 0


def cmd_chdb_server(args: argparse.Namespace) -> int:
    from jiandu.chdb_server import serve

    serve(_settings(args).data_dir / "clickhouse", args.host, args.port)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from jiandu.submit import submit_file

    return submit_file(_settings(args), Path(args.file), unit=args.unit, api=args.api, token=args.token)


def cmd_template(args: argparse.Namespace) -> int:
    from producers.template import write_template

    path = Path(args.file)
    write_template(path, rows=args.rows)
    print(f"已写出模板 wrote {path} ({args.rows} 行 rows)；填写后用 jiandu submit {path} 提交")
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    from jiandu.submit import outbox

    return outbox(_settings(args), args.deliver)


def cmd_simulate(args: argparse.Namespace) -> int:
    from jiandu.submit import simulate

    return simulate(_settings(args), units=args.units, events=args.events, rate=args.rate,
                    api=args.api, token=args.token)


def cmd_report(args: argparse.Namespace) -> int:
    from jiandu.report import report

    return report(_settings(args), args.unit, args.from_, args.to, Path(args.xlsx), args.api, args.token)


def cmd_verify(args: argparse.Namespace) -> int:
    from jiandu.audit_cli import verify, verify_file

    if args.file:
        if args.unit or args.api or args.as_of:
            raise ValueError("--file 核验的是导出文件本身，不能与 --unit、--api 或 --as-of 同用 (--file "
                             "verifies the export as it is: not with --unit, --api or --as-of)")
        return verify_file(Path(args.file))
    return verify(_settings(args), args.unit, args.api, args.token, args.as_of)


def cmd_export(args: argparse.Namespace) -> int:
    from jiandu.audit_cli import export

    return export(_settings(args), Path(args.file), args.unit, args.as_of, args.api, args.token)


def cmd_replay(args: argparse.Namespace) -> int:
    from jiandu.audit_cli import replay_cmd

    return replay_cmd(_settings(args), args.as_of, args.into, args.api, args.token)


def cmd_bench(args: argparse.Namespace) -> int:
    from jiandu.bench import bench

    return bench(args.events, args.json, args.scale_to)


def _whole(minimum: int, maximum: int | None = None):
    """An argparse type: a whole number in [minimum, maximum], or a plain error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' 不是整数 (not a whole number)") from None
        if value < minimum or (maximum is not None and value > maximum):
            where = f"{minimum}–{maximum}" if maximum is not None else f"≥ {minimum}"
            raise argparse.ArgumentTypeError(f"{value} 超出范围 {where} (out of range)")
        return value
    return parse


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' 不是数字 (not a number)") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: 每秒事件数须为非负数 (events per second must be ≥ 0)")
    return value


def _instant(text: str) -> str:
    """An ISO 8601 instant (checked here; replay_cmd reads it)."""
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' 不是 ISO 8601 时间 (not an ISO 8601 instant, e.g. 2024-06-30T23:59:59+08:00)") from None
    return text


PORT = _whole(0, 65535)  # 0: any free port
BENCH_MIN_EVENTS = 1  # 0 waited forever for the naive baseline; negative counts crashed in it


def glue_token_values(argv: list[str]) -> list[str]:
    """Write `--token VALUE` as `--token=VALUE`, so a token starting with "-" is not read as an option."""
    glued: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--token" and i + 1 < len(argv):
            glued.append(f"--token={argv[i + 1]}")
            i += 2
        else:
            glued.append(argv[i])
            i += 1
    return glued


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jiandu", description="监督 — 纪检监察报送统计平台")
    parser.add_argument("--data-dir", help="数据目录 (default $JIANDU_DATA_DIR or ./.jiandu)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole platform embedded, in the foreground")
    up.add_argument("--demo", action="store_true", help="load a province and stream events")
    up.add_argument("--data-dir")
    up.add_argument("--api-port", type=PORT)
    up.add_argument("--broker-port", type=PORT)
    up.set_defaults(func=cmd_up)

    for name, func, text in (("worker", cmd_worker, "production: the faust ingest worker alone"),
                             ("api", cmd_api, "production: the API and outbox relay alone"),
                             ("migrate", cmd_migrate, "apply ClickHouse migrations and exit")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--data-dir")
        if name == "api":
            p.add_argument("--api-port", type=PORT)
        p.set_defaults(func=func)

    chs = sub.add_parser("chdb-server", help="serve the data dir's chDB over ClickHouse's HTTP interface "
                                            "(the worker/API split on one machine without a ClickHouse server)")
    chs.add_argument("--data-dir")
    chs.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: no authentication)")
    chs.add_argument("--port", type=PORT, default=8123)
    chs.set_defaults(func=cmd_chdb_server)

    submit = sub.add_parser("submit", help="submit events from a JSONL / CSV / XLSX file")
    submit.add_argument("file")
    submit.add_argument("--unit", help="only accept rows of this unit (others are errors)")
    submit.add_argument("--api", help="submit through a running API, e.g. http://127.0.0.1:8000")
    submit.add_argument("--token", default=os.environ.get("JIANDU_TOKEN"))
    submit.add_argument("--data-dir")
    submit.set_defaults(func=cmd_submit)

    box = sub.add_parser("outbox", help="what waits in the data dir's outbox (events accepted while the "
                                        "broker was down); --deliver sends it")
    box.add_argument("--deliver", action="store_true",
                     help="send what waits to JIANDU_KAFKA_BOOTSTRAP's broker now")
    box.add_argument("--data-dir")
    box.set_defaults(func=cmd_outbox)

    from producers.template import DEFAULT_ROWS, MAX_ROWS

    template = sub.add_parser("template", help="write an .xlsx workbook to fill in (Chinese headers, "
                                               "drop-downs, event ids ready) for jiandu submit")
    template.add_argument("file", help="the workbook to write, e.g. 报送.xlsx")
    template.add_argument("--rows", type=_whole(1, MAX_ROWS), default=DEFAULT_ROWS,
                          help=f"rows with an event id ready (default {DEFAULT_ROWS})")
    template.set_defaults(func=cmd_template)

    simulate = sub.add_parser("simulate", help="publish a realistic synthetic workload")
    simulate.add_argument("--units", type=_whole(0), default=0, help="limit to the first N units (0: all)")
    simulate.add_argument("--events", type=_whole(0), default=10_000)
    simulate.add_argument("--rate", type=_rate, default=0, help="events per second (0: as fast as possible)")
    simulate.add_argument("--api")
    simulate.add_argument("--token", default=os.environ.get("JIANDU_TOKEN"))
    simulate.add_argument("--data-dir")
    simulate.set_defaults(func=cmd_simulate)

    rep = sub.add_parser("report", help="write the indicator table of a unit's children as .xlsx")
    rep.add_argument("--unit", required=True)
    rep.add_argument("--from", dest="from_", help="first day, YYYY-MM-DD (inclusive)")
    rep.add_argument("--to", help="end day, YYYY-MM-DD (exclusive)")
    rep.add_argument("--xlsx", required=True, help="output file")
    rep.add_argument("--api")
    rep.add_argument("--token", default=os.environ.get("JIANDU_TOKEN"))
    rep.add_argument("--data-dir")
    rep.set_defaults(func=cmd_report)

    ver = sub.add_parser("verify", help="verify the per-unit hash chains; non-zero exit on any break")
    ver.add_argument("--unit")
    ver.add_argument("--api", help="verify through a running API instead of the data dir")
    ver.add_argument("--token", default=os.environ.get("JIANDU_TOKEN"))
    ver.add_argument("--file", help="verify an export (jiandu export) offline: no platform, no store")
    ver.add_argument("--as-of", type=_instant, help="the chains as recorded up to this instant (ISO 8601): "
                                                    "the fingerprint of an export taken --as-of it")
    ver.add_argument("--data-dir")
    ver.set_defaults(func=cmd_verify)

    exp = sub.add_parser("export", help="write the ledger with its hash chains as JSON Lines, for "
                                        "auditors (jiandu verify --file checks it anywhere)")
    exp.add_argument("file", help="the .jsonl file to write")
    exp.add_argument("--unit", help="this unit's subtree only (each chain whole)")
    exp.add_argument("--as-of", type=_instant, help="only events recorded up to this instant (ISO 8601)")
    exp.add_argument("--api")
    exp.add_argument("--token", default=os.environ.get("JIANDU_TOKEN"))
    exp.add_argument("--data-dir")
    exp.set_defaults(func=cmd_export)

    rep2 = sub.add_parser("replay", help="rebuild projections from the ledger; print a checksum per table")
    rep2.add_argument("--as-of", type=_instant, help="only events recorded up to this instant (ISO 8601)")
    rep2.add_argument("--into", help="write into tables NAME_<table> instead of swapping")
    rep2.add_argument("--api")
    rep2.add_argument("--token", default=os.environ.get("JIANDU_TOKEN"))
    rep2.add_argument("--data-dir")
    rep2.set_defaults(func=cmd_replay)

    ben = sub.add_parser("bench", help="measure the pipeline against its own limits (DESIGN §9)")
    ben.add_argument("--events", type=_whole(BENCH_MIN_EVENTS), default=100_000)
    ben.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ben.add_argument("--scale-to", type=_whole(BENCH_MIN_EVENTS), default=None, metavar="M",
                     help="then grow the ledger to M events (copies of the N, in ClickHouse) and "
                          "measure replay, API latency and RSS again (printed on the line before)")
    ben.set_defaults(func=cmd_bench)

    from jiandu.dashboards_cli import add_parser as add_dashboards_parser

    add_dashboards_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(glue_token_values(sys.argv[1:] if argv is None else argv))
    if os.environ.get("JIANDU_LOG_LEVEL", "WARNING").upper() == "WARNING":
        # The driver logs "Unexpected Http Driver Exception" before the error we print anyway.
        logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:
        print(f"错误 (error): {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
