"""`jiandu dashboards build|publish`: Grafana JSON out of the panel specs (DESIGN §4)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def cmd_build(args: argparse.Namespace) -> int:
    from dashboards.grafana import BUILD_DIR, write

    for path in write(Path(args.out) if args.out else BUILD_DIR):
        print(path)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from grafana_client.client import GrafanaException
    from requests import RequestException

    from dashboards.publish import publish

    try:
        replies = publish(args.url, args.token)
    except GrafanaException as exc:
        print(f"错误 (error): Grafana 拒绝发布 (publish refused): {exc}", file=sys.stderr)
        return 1
    except RequestException as exc:  # refused, unresolvable, timed out: requests' own words follow
        print(f"错误 (error): 无法连接 Grafana {args.url} (cannot reach Grafana; is --url or $GRAFANA_URL "
              f"right?): {exc}", file=sys.stderr)
        return 2
    for reply in replies:
        print(f"{reply.get('uid')}  {reply.get('status')}  {reply.get('url')}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `dashboards build|publish` to the `jiandu` command."""
    parser = subparsers.add_parser("dashboards", help="write Grafana dashboard JSON / push it to Grafana")
    verbs = parser.add_subparsers(dest="dashboards_command", required=True)

    build = verbs.add_parser("build", help="write one JSON file per dashboard")
    build.add_argument("--out", help="folder (default: dashboards/build, which docker-compose.yml mounts)")
    build.set_defaults(func=cmd_build)

    push = verbs.add_parser("publish", help="create or overwrite the dashboards in a Grafana")
    push.add_argument("--url", default=os.environ.get("GRAFANA_URL", "http://localhost:3000"),
                      help="Grafana base URL (default $GRAFANA_URL or http://localhost:3000)")
    push.add_argument("--token", default=os.environ.get("GRAFANA_TOKEN"),
                      help="service-account token (default $GRAFANA_TOKEN); "
                           "or put user:password in the URL")
    push.set_defaults(func=cmd_publish)
    return parser
