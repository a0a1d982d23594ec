"""HTTP routes of the habitats app, at its seed's paths."""

from fastapi import APIRouter

router = APIRouter()
