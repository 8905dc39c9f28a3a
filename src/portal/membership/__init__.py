"""Membership programme: pure rules (rules.py) and the points / stored-value ledgers (ledger.py)."""
