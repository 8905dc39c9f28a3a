"""Schemathesis hooks for the POS API contract test (loaded through SCHEMATHESIS_HOOKS).

Every request gets a fresh Idempotency-Key, or Schemathesis' repeated keys would turn most
writes into replays (or into 422 "key reused"). A key the test generated on purpose outside the
documented pattern (negative testing) is left as it is, so that its refusal is still tested.
"""
from __future__ import annotations

import re
import uuid

import schemathesis

HEADER = "Idempotency-Key"
VALID = re.compile(r"[!-~]{1,100}")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() == HEADER.lower():
            value = headers[name]
            if isinstance(value, str) and VALID.fullmatch(value):
                headers[name] = uuid.uuid4().hex
