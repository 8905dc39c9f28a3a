"""VIP Portal: encrypted VIP customer files, scoped access and a tamper-evident audit log."""
