"""Reason codes in words, so the page can say why in the volunteer's language."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from edge.gate.reasons import REASON_TEXT

router = APIRouter(prefix="/api/reasons", tags=["reasons"])


class ReasonWords(BaseModel):
    """One reason code in each language the page offers."""

    zh: str
    en: str


@router.get("", response_model=dict[str, ReasonWords])
def reasons() -> dict[str, ReasonWords]:
    """Every reason code the gate gives, with its words (the REASON_TEXT table)."""
    return {str(code): ReasonWords(zh=zh, en=en) for code, (zh, en) in REASON_TEXT.items()}
