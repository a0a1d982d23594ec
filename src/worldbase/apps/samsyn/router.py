"""HTTP routes of the samsyn app, at its seed's paths."""

from fastapi import APIRouter

router = APIRouter()
