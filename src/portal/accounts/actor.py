"""Who is acting: the signed-in user as the domain and the policy see them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str
    role: str
    unit_id: int | None = None
    unit_path: str = ""
    client_addr: str = ""
    terminal_id: int | None = None  # a POS terminal acting through the API (role "terminal")

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        """The command line or a job acting on its own authority."""
        return cls(user_id=None, username=name, role="system")
