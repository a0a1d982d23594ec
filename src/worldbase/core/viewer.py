"""`/viewer`: a small page that shows a map's MapLibre style or one layer's tiles, so a
person can see that tiles are right. It talks to the public API only (core imports no app);
MapLibre GL JS comes from the npm registry at install time (`make install`), served from
this server like the docs' assets, never from a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
VENDOR = STATIC / "vendor"
VENDOR_PATH = "/static/vendor"


def install_viewer(app: FastAPI) -> None:
    # check_dir=False: without MapLibre installed the page still loads and says what is missing.
    app.mount(VENDOR_PATH, StaticFiles(directory=VENDOR, check_dir=False), name="viewer-assets")

    @app.get("/viewer", include_in_schema=False)
    async def viewer() -> FileResponse:
        return FileResponse(STATIC / "viewer.html", media_type="text/html")
