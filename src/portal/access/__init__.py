"""Approval-gated cross-access: requests, leaders' decisions, time-limited grants."""
