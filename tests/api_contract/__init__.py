"""Schemathesis hooks and configuration for tests/test_api_contract.py."""
