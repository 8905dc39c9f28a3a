"""Reports and analytics: figures computed in SQL within the policy's scope, never personal data.

Each report module (overview, classes, monthly, cards, audit_stats) returns a ``Report``: tables
(the accessible numbers) and charts (the same numbers as JSON for static/reports.js). Tables
export as CSV and XLSX (``exporting``). Importable without Litestar.
"""
