"""Who the CLI acts as: an operator who holds the database, an admin."""

from __future__ import annotations

from db.models import Scope
from service.registry.clients import ALL_ZONES, Principal

OPERATOR = Principal("cli", frozenset({Scope.admin.value}), (ALL_ZONES,))
