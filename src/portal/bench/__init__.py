"""Benchmark support: bulk seeding of realistic encrypted data (no web server needed)."""
