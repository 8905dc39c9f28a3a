"""(placeholder: routes land here)."""
from __future__ import annotations

ROUTES: list = []
