"""Placeholder until its module lands (being written now)."""

from fastapi import APIRouter

router = APIRouter()
