"""Sales on credit: the routes of every credit view module, registered with the app as one list."""
from __future__ import annotations

from . import credit_pages, credit_terms, receivables

ROUTES = [*credit_pages.ROUTES, *receivables.ROUTES, *credit_terms.ROUTES]
