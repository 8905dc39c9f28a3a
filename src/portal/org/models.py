"""Organisation units stored with a materialised path, so a subtree is one indexed prefix scan."""
from __future__ import annotations

from sqlmodel import Field, SQLModel

from ..db import PATH_TYPE


class OrgUnit(SQLModel, table=True):
    __tablename__ = "org_unit"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    name: str = Field(max_length=100)
    parent_id: int | None = Field(default=None, foreign_key="org_unit.id")
    # "/1/4/9/": ids from the root down to this unit; a subtree is path LIKE '/1/4/%'.
    path: str = Field(default="", sa_type=PATH_TYPE, index=True)
    depth: int = 0
