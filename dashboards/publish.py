"""Push the generated dashboards to a running Grafana through its HTTP API (grafana-client)."""

from __future__ import annotations

from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from dashboards.grafana import build_all

FOLDER_UID, FOLDER_TITLE = "jiandu", "监督 jiandu"  # as in provisioning/dashboards/dashboards.yaml


def ensure_folder(api: GrafanaApi) -> str:
    """Return the jiandu folder's uid, creating the folder on first publish."""
    try:
        return api.folder.get_folder(FOLDER_UID)["uid"]
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
    return api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)["uid"]


def publish(url: str, token: str | None, timeout: float = 30) -> list[dict[str, Any]]:
    """Create or overwrite every dashboard in the jiandu folder; return Grafana's replies."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    folder = ensure_folder(api)
    replies = []
    for model in build_all().values():
        replies.append(api.dashboard.update_dashboard({
            "dashboard": {**model, "id": None}, "folderUid": folder, "overwrite": True,
            "message": "jiandu dashboards publish"}))
    return replies
