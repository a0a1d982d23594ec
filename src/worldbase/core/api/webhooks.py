"""Core routes: webhooks (being built)."""

from fastapi import APIRouter

router = APIRouter()
