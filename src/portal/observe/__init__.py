"""Observability: JSON-lines logs (logs.py) and Prometheus metrics (metrics.py).

A lower layer like db and vault: domain modules count what they do here; nothing here imports
the domains or the web framework.
"""
