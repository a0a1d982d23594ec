"""HTTP routes of the dnd app, at its seed's paths."""

from fastapi import APIRouter

router = APIRouter()
