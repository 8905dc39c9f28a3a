"""Settings read once from PORTAL_* environment variables (or *_FILE), with safe defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _env(name: str, default: str) -> str:
    """Value of PORTAL_<name>, or the contents of the file named by PORTAL_<name>_FILE."""
    file_var = os.environ.get(f"PORTAL_{name}_FILE")
    if file_var:
        return Path(file_var).read_text(encoding="utf-8").strip()
    return os.environ.get(f"PORTAL_{name}", default)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./var/portal.db"
    key_file: Path = Path("./var/keys.json")
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    # Failed sign-ins that throttle an account / a client address within the window.
    throttle_user_failures: int = 5
    throttle_addr_failures: int = 100
    throttle_window_minutes: int = 15
    # Trust X-Forwarded-For / X-Forwarded-Proto from a reverse proxy on loopback.
    trust_proxy: bool = False
    page_size: int = 50
    debug: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "Settings":
        d = cls()
        return replace(
            d,
            database_url=_env("DATABASE_URL", d.database_url),
            key_file=Path(_env("KEY_FILE", str(d.key_file))),
            timezone=_env("TIMEZONE", d.timezone),
            default_locale=_env("DEFAULT_LOCALE", d.default_locale),
            session_idle_minutes=int(_env("SESSION_IDLE_MINUTES", str(d.session_idle_minutes))),
            session_max_hours=int(_env("SESSION_MAX_HOURS", str(d.session_max_hours))),
            trust_proxy=_env("TRUST_PROXY", "0").lower() in ("1", "true", "yes"),
            page_size=int(_env("PAGE_SIZE", str(d.page_size))),
            debug=_env("DEBUG", "0").lower() in ("1", "true", "yes"),
        )
