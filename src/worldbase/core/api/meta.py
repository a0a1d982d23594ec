"""Core routes: meta (being built)."""

from fastapi import APIRouter

router = APIRouter()
