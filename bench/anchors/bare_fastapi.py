"""The bare FastAPI anchor of ANCHORS.md: one endpoint, no middleware, same JSON size as ours."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def info() -> dict[str, object]:
    return {"name": "Worldbase", "version": "0.1.0", "docs": "/docs", "health": "/health"}
