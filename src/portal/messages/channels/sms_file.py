"""SMS into a file (one JSON line per message): the demo's and the tests' gateway."""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from . import Outgoing


class FileSms:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    def send(self, msg: Outgoing) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = json.dumps({"id": msg.message_id, "to": msg.address, "text": msg.body}, ensure_ascii=False)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)
        return f"file:{msg.message_id}"


def read(path: Path | str) -> list[dict]:
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
