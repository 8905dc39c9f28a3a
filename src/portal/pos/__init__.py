"""Point-of-sale terminals: their API keys (issued, checked, revoked) and idempotent replies to retried calls."""
