"""What the server writes to its log when it starts: a count of the authorisation rules, never
the rules themselves (they map every role's powers)."""
from __future__ import annotations

import logging

from portal.policy import enforcer


def test_the_server_logs_how_many_policy_rules_it_loaded_not_the_rules(caplog):
    caplog.set_level(logging.DEBUG)  # everything, casbin's loggers included
    logging.getLogger("casbin.policy").disabled = False  # as in a fresh process
    enforcer._enforcer.cache_clear()
    enforcer._allowed.cache_clear()
    try:
        loaded = enforcer._enforcer()
        assert enforcer.allowed_relations("salesperson", enforcer.Action.CUSTOMER_VIEW)
    finally:
        enforcer._allowed.cache_clear()
    rules = len(loaded.get_policy())  # the model has no role groups
    assert rules > 10
    messages = [r.getMessage() for r in caplog.records]
    assert f"authorisation policy loaded: {rules} rules" in messages
    assert not [r for r in caplog.records if r.name.startswith("casbin")]
    assert "salesperson" not in caplog.text and "p_rel" not in caplog.text
