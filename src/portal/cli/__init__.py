"""The `portal` command: migrate, serve, load the demo, manage units and users, import, audit, keys.

Every command works on the database and key file named by the PORTAL_* settings. Errors are
one line on stderr and a non-zero exit (2 for bad input), never a traceback; set
PORTAL_DEBUG=1 to see the traceback of an unexpected error. Each module beside this one
adds the commands of one domain to `main`.
"""
from . import backup, bench_audit, bench_purchases, customers, dbroles, doctor, integrity, jobs, messages, people, privacy, programme, purchases, reports, server, terminals  # noqa: F401  (register commands)
from . import receivables  # noqa: F401  (sales on credit)
from .base import main

__all__ = ["main"]
