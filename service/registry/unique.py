"""Registering something whose name must be unique: the database decides, and says so as a 409."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from service.core.errors import Conflict

Row = TypeVar("Row", bound=SQLModel)


def commit_unique(session: Session, row: Row, taken: Conflict) -> Row:
    """``row`` committed and read back; ``taken`` raised (nothing committed) when its unique name is used."""
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise taken from exc
    session.refresh(row)
    return row
