"""Core routes: jobs (being built)."""

from fastapi import APIRouter

router = APIRouter()
