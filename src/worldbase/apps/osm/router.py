"""HTTP routes of the osm app, at its seed's paths."""

from fastapi import APIRouter

router = APIRouter()
