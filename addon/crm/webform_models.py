"""Tables of public web forms: the form definitions and per-client submission counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from addon.crm.models import JSONValue, utcnow
from addon.db import Base


class WebForm(Base):
    """A lead-capture form of one folder, published at /forms/<public_id>."""

    __tablename__ = "web_forms"
    __table_args__ = (Index("ix_web_forms_workspace", "workspace_id", "folder_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"))
    # Unguessable: the page is public, so its address must not enumerate other forms.
    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # In display order: [{"field_id": int, "label": str, "required": bool}].
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONValue, default=list)
    thank_you: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class WebFormHit(Base):
    """Submissions of one client to one workspace's forms in one fixed time window."""

    __tablename__ = "web_form_hits"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    # A keyed hash of the client's address: counting needs no stored IP address.
    client_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The window's number: seconds since the epoch divided by the window length.
    window: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)
