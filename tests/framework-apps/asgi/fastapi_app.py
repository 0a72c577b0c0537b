"""The FastAPI application of the ASGI integration tests, mounted at /fast
(FastAPI's `app`, found without callable-object=)."""

import contextlib
import os

from fastapi import FastAPI, Request
from pydantic import BaseModel


class Item(BaseModel):
    id: int
    name: str


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"db": "connected"}


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"id": item_id, "q": q, "framework": "fastapi"}


@app.post("/items")
async def create_item(item: Item):
    return {"created": item.model_dump()}


@app.get("/state")
async def state(request: Request):
    return {"db": request.state.db, "root_path": request.scope["root_path"], "pid": os.getpid()}
