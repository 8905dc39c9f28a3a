"""Staff accounts, passwords, sign-in throttling and server-side sessions."""
