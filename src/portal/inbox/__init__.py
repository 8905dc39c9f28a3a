"""In-app notices to staff (no personal data: file numbers and usernames only)."""
