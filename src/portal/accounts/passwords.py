"""Password hashing (argon2id) and the password rule: long enough, not common, no composition rules."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, library defaults (t=3, m=64 MiB, p=4)
# A dummy hash so that unknown usernames cost the same time as known ones.
_DUMMY = _hasher.hash("not-a-real-password-dummy")

MIN_LENGTH = 12

# The most common passwords of 12+ characters (from public breach lists), plus the obvious.
COMMON_PASSWORDS = frozenset(
    """
    123456789012 1234567890123 12345678901234 123456789abc 1234567890qw qwertyuiopas
    qwertyuiop12 qwertyuiop123 1qaz2wsx3edc 1q2w3e4r5t6y 1q2w3e4r5t6y7u qazwsxedcrfv
    passwordpassword password1234 password12345 password123456 passw0rd1234 p@ssw0rd1234
    iloveyou1234 administrator admin1234567 admin123456789 welcome12345 letmein12345
    abcdefghijkl abc123456789 aaaaaaaaaaaa 111111111111 000000000000 123123123123
    woaini1314520 woaini521521 5201314520131 a123456789012 zxcvbnmasdfg asdfghjkl123
    changeme1234 changemenow1 secretpassword trustno1trustno1 monkeymonkey dragondragon
    """.split()
)


class WeakPassword(ValueError):
    pass


def check_password_rule(password: str, *, username: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"The password must have at least {MIN_LENGTH} characters.")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) <= 2:
        raise WeakPassword("This password is too common; choose another.")
    if username and username.lower() in lowered:
        raise WeakPassword("The password must not contain the username.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        # An account without a password yet (set-up code not used) stores "": never a match.
        return _hasher.verify(stored_hash or _DUMMY, password) and bool(stored_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
