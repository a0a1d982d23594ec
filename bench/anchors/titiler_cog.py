"""The TiTiler anchor of ANCHORS.md: a plain titiler.core `TilerFactory` app (PyPI)."""

from fastapi import FastAPI
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
from titiler.core.factory import TilerFactory

app = FastAPI()
cog = TilerFactory()
app.include_router(cog.router, prefix="/cog")
add_exception_handlers(app, DEFAULT_STATUS_CODES)


@app.get("/")
async def root() -> dict[str, str]:
    return {"name": "titiler"}
