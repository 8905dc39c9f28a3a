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
    # POS API calls with a key nobody holds, per client address and minute, before 429.
    api_refusals_per_minute: int = 30
    # Trust X-Forwarded-For / X-Forwarded-Proto from a reverse proxy on loopback.
    trust_proxy: bool = False
    page_size: int = 50
    # Exports of more files than this wait for a leader's approval (then: one download in 24 h).
    export_approval_threshold: int = 100
    # The signer signs the audit chain's head every N entries (and on demand).
    audit_checkpoint_every: int = 1000
    # ... and once the newest checkpoint is this many seconds old while entries are appended.
    audit_checkpoint_seconds: int = 60
    # Auditor alerts: views per hour, rows per export, denied attempts per 10 minutes,
    # working hours (local).
    alert_views_per_hour: int = 50
    alert_export_rows: int = 100
    alert_denied_burst: int = 5
    alert_work_start_hour: int = 8
    alert_work_end_hour: int = 20
    # The shortest full reason for a cross-access request, as access.reasons weighs it (a
    # letter 1, a Chinese character 2): the request form refuses less, the alerts flag less.
    grant_reason_min: int = 20
    # Backups (`portal backup`): the backup key (never the data key; keep a copy away from both
    # the server and the backups) and where `portal backup create` writes by default.
    backup_key_file: Path = Path("./var/backup-key.json")
    backup_dir: Path = Path("./var/backups")
    # Key backups (`portal backup keys`): the customers' own data keys, which backups never hold;
    # a directory apart from the backups, kept only a few days (README, "Backups").
    key_backup_dir: Path = Path("./var/key-backups")
    # Messages to members: e-mail through SMTP (none set: into the maildir mail_dir), SMS
    # through an HTTP gateway (none set: one JSON line per message into sms_file).
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "VIP Portal <members@localhost>"
    mail_dir: Path = Path("./var/mail")
    sms_gateway_url: str = ""
    sms_access_key: str = ""
    sms_secret: str = ""
    sms_sign_name: str = "会员中心"
    sms_file: Path = Path("./var/sms.jsonl")
    # Where members reach the opt-out page (the links in e-mails).
    public_url: str = "http://127.0.0.1:8000"
    debug: bool = False
    # "production" makes `portal serve` refuse to start while `portal doctor` finds a danger.
    env: str = "development"
    # /metrics: a bearer token, and/or client addresses or networks (comma-separated) allowed
    # without one; neither set: /metrics answers 404.
    metrics_token: str = ""
    metrics_allow: tuple[str, ...] = ()
    # "json" (one object per line) or "text"; and the level.
    log_format: str = "json"
    log_level: str = "INFO"
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
            api_refusals_per_minute=int(_env("API_REFUSALS_PER_MINUTE", str(d.api_refusals_per_minute))),
            trust_proxy=_env("TRUST_PROXY", "0").lower() in ("1", "true", "yes"),
            page_size=int(_env("PAGE_SIZE", str(d.page_size))),
            export_approval_threshold=int(_env("EXPORT_APPROVAL_THRESHOLD", str(d.export_approval_threshold))),
            audit_checkpoint_every=int(_env("AUDIT_CHECKPOINT_EVERY", str(d.audit_checkpoint_every))),
            audit_checkpoint_seconds=int(_env("AUDIT_CHECKPOINT_SECONDS", str(d.audit_checkpoint_seconds))),
            alert_views_per_hour=int(_env("ALERT_VIEWS_PER_HOUR", str(d.alert_views_per_hour))),
            alert_export_rows=int(_env("ALERT_EXPORT_ROWS", str(d.alert_export_rows))),
            alert_denied_burst=int(_env("ALERT_DENIED_BURST", str(d.alert_denied_burst))),
            alert_work_start_hour=int(_env("ALERT_WORK_START_HOUR", str(d.alert_work_start_hour))),
            alert_work_end_hour=int(_env("ALERT_WORK_END_HOUR", str(d.alert_work_end_hour))),
            grant_reason_min=int(_env("GRANT_REASON_MIN", _env("ALERT_GRANT_REASON_MIN", str(d.grant_reason_min)))),
            backup_key_file=Path(_env("BACKUP_KEY_FILE", str(d.backup_key_file))),
            backup_dir=Path(_env("BACKUP_DIR", str(d.backup_dir))),
            key_backup_dir=Path(_env("KEY_BACKUP_DIR", str(d.key_backup_dir))),
            smtp_host=_env("SMTP_HOST", d.smtp_host),
            smtp_port=int(_env("SMTP_PORT", str(d.smtp_port))),
            smtp_starttls=_env("SMTP_STARTTLS", "1").lower() in ("1", "true", "yes"),
            smtp_user=_env("SMTP_USER", d.smtp_user),
            smtp_password=_env("SMTP_PASSWORD", d.smtp_password),
            smtp_from=_env("SMTP_FROM", d.smtp_from),
            mail_dir=Path(_env("MAIL_DIR", str(d.mail_dir))),
            sms_gateway_url=_env("SMS_GATEWAY_URL", d.sms_gateway_url),
            sms_access_key=_env("SMS_ACCESS_KEY", d.sms_access_key),
            sms_secret=_env("SMS_SECRET", d.sms_secret),
            sms_sign_name=_env("SMS_SIGN_NAME", d.sms_sign_name),
            sms_file=Path(_env("SMS_FILE", str(d.sms_file))),
            public_url=_env("PUBLIC_URL", d.public_url).rstrip("/"),
            debug=_env("DEBUG", "0").lower() in ("1", "true", "yes"),
            env=_env("ENV", d.env).strip().lower() or d.env,
            metrics_token=_env("METRICS_TOKEN", ""),
            metrics_allow=tuple(a.strip() for a in _env("METRICS_ALLOW", "").split(",") if a.strip()),
            log_format=_env("LOG_FORMAT", d.log_format).strip().lower(),
            log_level=_env("LOG_LEVEL", d.log_level).strip().upper(),
        )
