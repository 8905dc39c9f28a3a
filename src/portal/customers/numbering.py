"""File numbers: region code + 5-digit sequence within the region, never reused."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from .rules import format_file_number


def next_file_number(s: Session, region_code: str) -> str:
    """Take the next number for a region in the caller's transaction (the row lock serialises takers)."""
    s.execute(text("INSERT INTO file_number_sequence (region_code, next_seq) VALUES (:r, 1) "
                   "ON CONFLICT (region_code) DO NOTHING"), {"r": region_code})
    seq = s.execute(
        text("UPDATE file_number_sequence SET next_seq = next_seq + 1 "
             "WHERE region_code = :r RETURNING next_seq - 1"),
        {"r": region_code},
    ).scalar_one()
    return format_file_number(region_code, seq)
