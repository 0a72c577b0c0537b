"""A Starlette application whose lifespan startup fails: its requests get
500, the failure is logged with its traceback and the process is replaced."""

import contextlib

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app):
    raise ConnectionError("the database is not there")
    yield


async def index(request):
    return PlainTextResponse("never served")


app = Starlette(routes=[Route("/", index)], lifespan=lifespan)
