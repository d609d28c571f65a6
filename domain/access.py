"""Who may do what where (DESIGN §8). Pure rules over a principal and the hierarchy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from domain.hierarchy import Hierarchy

Role = Literal["admin", "submitter", "viewer", "auditor"]
ROLES: tuple[str, ...] = ("admin", "submitter", "viewer", "auditor")


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    unit_id: str | None  # None only for the bootstrap admin
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and self.unit_id is None


def within(tree: Hierarchy, principal: Principal, unit_id: str, on: dt.date | None = None) -> bool:
    """True when `unit_id` is in the principal's subtree (today's hierarchy)."""
    if principal.is_admin:
        return True
    if principal.unit_id is None or unit_id not in tree or principal.unit_id not in tree:
        return False
    return tree.is_within(unit_id, principal.unit_id, on or dt.date.today())


def can_read(tree: Hierarchy, principal: Principal, unit_id: str) -> bool:
    return within(tree, principal, unit_id)


def can_audit(tree: Hierarchy, principal: Principal, unit_id: str) -> bool:
    return principal.role in ("admin", "auditor") and within(tree, principal, unit_id)


def can_submit(tree: Hierarchy, principal: Principal, unit_id: str) -> bool:
    return principal.role in ("admin", "submitter") and within(tree, principal, unit_id)


def can_issue(tree: Hierarchy, principal: Principal, unit_id: str, role: str) -> bool:
    """Admins issue anything; others issue their own role or `viewer`, inside their subtree."""
    if principal.is_admin:
        return True
    if principal.role == "admin":  # a unit-bound admin: any role within its subtree
        return within(tree, principal, unit_id)
    return role in (principal.role, "viewer") and within(tree, principal, unit_id)
