"""Encrypted, verifiable backups of the portal's database, and restoring them.

`key.py` holds the backup key (not the data key), `container.py` the encrypted file format,
`snapshot.py` the consistent copies of SQLite and PostgreSQL, `service.py` the use cases
(create, verify, restore), `checks.py` what a restored database must satisfy, `prune.py` which
backups a retention schedule keeps. The `portal backup` command (cli/backup.py) drives them.
"""
