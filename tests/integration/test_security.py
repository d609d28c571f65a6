"""Scope on every endpoint for every (caller, target) pair; limits; token lifecycle."""

from __future__ import annotations

import httpx
import pytest

from tests.harness import Up, event, small_province

EXTRA_UNITS = [("k1.g1", "stationed_group", "k1"), ("k2.t1", "township", "k2"), ("c1.g1", "stationed_group", "c1")]
PATHS = {"p": [], "c1": ["p"], "c2": ["p"], "k1": ["p", "c1"], "k2": ["p", "c2"], "g1": ["p"],
         "k1.g1": ["p", "c1", "k1"], "k2.t1": ["p", "c2", "k2"], "c1.g1": ["p", "c1"]}
UNITS = sorted(PATHS)
ROLES = ("viewer", "submitter", "auditor")


def within(target: str, caller: str) -> bool:
    return target == caller or caller in PATHS[target]


def expected_ok(endpoint: str, role: str, caller: str, target: str) -> bool:
    inside = within(target, caller)
    if endpoint == "submit":
        return inside and role == "submitter"
    if endpoint.startswith("audit"):
        return inside and role == "auditor"
    return inside  # reads, reports and issuing a viewer token


def call(up: Up, endpoint: str, token: str, target: str) -> httpx.Response:
    h = up.headers(token)
    if endpoint == "indicators":
        return httpx.get(f"{up.url}/v1/indicators", params={"unit": target}, headers=h, timeout=60)
    if endpoint == "unit":
        return httpx.get(f"{up.url}/v1/units/{target}", headers=h, timeout=60)
    if endpoint == "children":
        return httpx.get(f"{up.url}/v1/units/{target}/children", headers=h, timeout=60)
    if endpoint == "report":
        return httpx.get(f"{up.url}/v1/reports/indicators.xlsx", params={"unit": target}, headers=h, timeout=60)
    if endpoint == "audit_events":
        return httpx.get(f"{up.url}/v1/audit/events", params={"unit": target, "limit": 5}, headers=h, timeout=60)
    if endpoint == "audit_verify":
        return httpx.get(f"{up.url}/v1/audit/verify", params={"unit": target}, headers=h, timeout=60)
    if endpoint == "token":
        return httpx.post(f"{up.url}/v1/tokens", json={"unit_id": target, "role": "viewer"}, headers=h, timeout=60)
    if endpoint == "submit":
        return up.post([event("talk_conducted", target, "m", {"kind": "reminder", "person_id": "z"})], token=token)
    raise AssertionError(endpoint)


ENDPOINTS = ("indicators", "unit", "children", "report", "audit_events", "audit_verify", "token", "submit")


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    platform = Up(tmp_path_factory.mktemp("sec"), env={"JIANDU_RATE_LIMIT_PER_MINUTE": "100000"}).wait_ready()
    units = small_province() + [
        event("unit_registered", parent, uid, {"name": uid, "level": level, "parent_id": parent,
                                               "effective_from": "2020-01-01"}, when="2020-01-01T00:00:00+08:00")
        for uid, level, parent in EXTRA_UNITS]
    assert platform.post(units).status_code == 202
    # Every unit: a registration is recorded by the parent, so the units land in different
    # partitions and may be folded in either order (c1.g1 can be known before c1 is).
    for uid in UNITS:
        platform.wait_unit(uid)
    yield platform
    platform.stop()


def _token(up: Up, unit: str, role: str) -> str:
    response = httpx.post(f"{up.url}/v1/tokens", json={"unit_id": unit, "role": role}, headers=up.headers(), timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["token"]


def test_every_endpoint_for_every_caller_and_target_respects_scope(up):
    violations, denied_wrongly, checked = [], [], 0
    for role in ROLES:
        for caller in UNITS:
            token = _token(up, caller, role)
            for target in UNITS:
                for endpoint in ENDPOINTS:
                    status = call(up, endpoint, token, target).status_code
                    ok = status in (200, 201, 202)
                    want = expected_ok(endpoint, role, caller, target)
                    checked += 1
                    if ok and not want:
                        violations.append((role, caller, endpoint, target, status))
                    elif not ok and (want or status != 403):
                        denied_wrongly.append((role, caller, endpoint, target, status))
    print(f"\nscope matrix: {checked} checks, {len(violations)} scope violations, "
          f"{len(denied_wrongly)} wrong denials")
    assert violations == []
    assert denied_wrongly == []


def test_revoked_and_expired_tokens_are_refused(up):
    response = httpx.post(f"{up.url}/v1/tokens", json={"unit_id": "c1", "role": "viewer"},
                          headers=up.headers(), timeout=60).json()
    token, token_id = response["token"], response["token_id"]
    assert up.indicators("c1", token=token).status_code == 200
    assert httpx.delete(f"{up.url}/v1/tokens/{token_id}", headers=up.headers(), timeout=60).status_code == 204
    import time
    time.sleep(2.5)  # the token cache holds a verdict for 2 s
    assert up.indicators("c1", token=token).status_code == 401
    stored = httpx.get(f"{up.url}/v1/audit/events", params={"limit": 1}, headers=up.headers(), timeout=60)
    assert token not in stored.text  # tokens are never echoed back or stored in clear


def test_viewer_cannot_mint_a_submitter_token(up):
    viewer = _token(up, "c1", "viewer")
    response = httpx.post(f"{up.url}/v1/tokens", json={"unit_id": "k1", "role": "submitter"},
                          headers=up.headers(viewer), timeout=60)
    assert response.status_code == 403


def test_oversized_body_is_413(up):
    body = b'{"events": [' + b" " * (33 * 1024 * 1024) + b"]}"
    response = httpx.post(f"{up.url}/v1/events", content=body, headers={**up.headers(), "Content-Type": "application/json"},
                          timeout=120)
    assert response.status_code == 413


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    up = Up(tmp_path / "rl", env={"JIANDU_RATE_LIMIT_PER_MINUTE": "20"}).wait_ready()
    try:
        statuses = [httpx.get(f"{up.url}/v1/me", headers=up.headers(), timeout=30) for _ in range(30)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited and all(r.headers.get("Retry-After", "").isdigit() for r in limited)
        assert [r.status_code for r in statuses[:20]] == [200] * 20
    finally:
        up.stop()


def test_expired_token_is_refused(up):
    import time

    response = httpx.post(f"{up.url}/v1/tokens", json={"unit_id": "c1", "role": "viewer", "expires_in_seconds": 2},
                          headers=up.headers(), timeout=60)
    assert response.status_code == 201
    token = response.json()["token"]
    assert up.indicators("c1", token=token).status_code == 200
    time.sleep(4.5)  # past expiry and past the 2 s verdict cache
    assert up.indicators("c1", token=token).status_code == 401
