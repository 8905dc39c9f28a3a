"""Second factor: RFC 6238 time-based one-time passwords, enrolment QR codes and recovery codes."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import datetime
from urllib.parse import quote

STEP = 30
DIGITS = 6


def new_secret() -> str:
    """160 random bits, base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    s = secret.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def code_at(secret: str, step: int) -> str:
    """RFC 4226 HOTP of the step counter (HMAC-SHA1, dynamic truncation)."""
    mac = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def step_of(at: datetime) -> int:
    return int(at.timestamp()) // STEP


def verify(secret: str, code: str, at: datetime, *, last_step: int | None = None, window: int = 1) -> int | None:
    """The matching time step (±window steps for clock drift), or None.

    A step at or before `last_step` is refused, so a code cannot be replayed.
    """
    code = (code or "").strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = step_of(at)
    for step in range(now - window, now + window + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, username: str, issuer: str = "VIP Portal") -> str:
    label = quote(f"{issuer}:{username}")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}&digits={DIGITS}&period={STEP}"


def qr_svg(uri: str) -> str:
    """The enrolment QR code as inline SVG, drawn on the server (no script, no third party)."""
    import segno

    return segno.make(uri, error="m").svg_inline(scale=4, dark="#1d2430", light="#ffffff")


RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_recovery_codes(n: int = 10) -> list[str]:
    """Ten one-time codes like `k7m2-x9pq-4rtw` (about 60 bits each)."""
    def one():
        chars = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(12))
        return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"
    return [one() for _ in range(n)]


def hash_recovery_code(code: str, pepper: bytes) -> str:
    # The codes are random and long, so a keyed fast hash is enough (no argon2 on every try).
    norm = code.strip().lower().replace(" ", "").replace("-", "")
    return hmac.new(pepper, norm.encode(), hashlib.sha256).hexdigest()
