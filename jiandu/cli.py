"""The `jiandu` command (DESIGN §4)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jiandu.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "api_port", None) is not None:
        overrides["api_port"] = args.api_port
    if getattr(args, "broker_port", None) is not None:
        overrides["broker_port"] = args.broker_port
    return Settings(**overrides)


def cmd_up(args: argparse.Namespace) -> int:
    from jiandu.runtime import Platform, run_foreground

    return run_foreground(Platform(_settings(args), demo=args.demo))


def cmd_submit(args: argparse.Namespace) -> int:
    from jiandu.submit import submit_file

    return submit_file(_settings(args), Path(args.file), unit=args.unit, api=args.api, token=args.token)


def cmd_simulate(args: argparse.Namespace) -> int:
    from jiandu.submit import simulate

    return simulate(_settings(args), units=args.units, events=args.events, rate=args.rate,
                    api=args.api, token=args.token)


def cmd_report(args: argparse.Namespace) -> int:
    from jiandu.report import report

    return report(_settings(args), args.unit, args.from_, args.to, Path(args.xlsx), args.api, args.token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jiandu", description="监督 — 纪检监察报送统计平台")
    parser.add_argument("--data-dir", help="数据目录 (default $JIANDU_DATA_DIR or ./.jiandu)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole platform embedded, in the foreground")
    up.add_argument("--demo", action="store_true", help="load a province and stream events")
    up.add_argument("--data-dir")
    up.add_argument("--api-port", type=int)
    up.add_argument("--broker-port", type=int)
    up.set_defaults(func=cmd_up)

    submit = sub.add_parser("submit", help="submit events from a JSONL / CSV / XLSX file")
    submit.add_argument("file")
    submit.add_argument("--unit", help="only accept rows of this unit (others are errors)")
    submit.add_argument("--api", help="submit through a running API, e.g. http://127.0.0.1:8000")
    submit.add_argument("--token", default=os.environ.get("JIANDU_TOKEN"))
    submit.add_argument("--data-dir")
    submit.set_defaults(func=cmd_submit)

    simulate = sub.add_parser("simulate", help="publish a realistic synthetic workload")
    simulate.add_argument("--units", type=int, default=0, help="limit to the first N units (0: all)")
    simulate.add_argument("--events", type=int, default=10_000)
    simulate.add_argument("--rate", type=float, default=0, help="events per second (0: as fast as possible)")
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

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:
        print(f"错误 (error): {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
