"""HTTP routes of the bestiary app, at its seed's paths."""

from fastapi import APIRouter

router = APIRouter()
