"""Running the ASGI application: one process, or several worker processes sharing the port.

Several workers only make sense on PostgreSQL (SQLite has one writer). Each worker builds its own
Container from the settings handed over in the environment; nothing is shared in memory, so any
number of processes, on one machine or many, can serve the same database.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import uvicorn

from .api.asgi import TesseraApp
from .app import build_app
from .config import Settings
from .container import Container

_SETTINGS_ENV = "TESSERA_WORKER_SETTINGS"


def _encode(settings: Settings) -> str:
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(settings).items()})


def _decode(raw: str) -> Settings:
    values: dict[str, Any] = json.loads(raw)
    values["data_dir"] = Path(values["data_dir"])
    return Settings(**values)


def worker_app() -> TesseraApp:
    """uvicorn's factory in each worker process."""
    settings = _decode(os.environ[_SETTINGS_ENV])
    container = Container(settings)
    container.instance_id = os.environ.get("TESSERA_WORKER_INSTANCE_ID", "")
    return build_app(container)


def serve(settings: Settings, instance_id: str, *, workers: int = 1) -> None:
    common: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "loop": "uvloop", "http": "httptools",
        "log_level": settings.log_level, "access_log": False, "lifespan": "on",
    }
    if workers > 1:
        os.environ[_SETTINGS_ENV] = _encode(settings)
        os.environ["TESSERA_WORKER_INSTANCE_ID"] = instance_id
        uvicorn.run("tessera.server:worker_app", factory=True, workers=workers, **common)
        return
    container = Container(settings)
    container.instance_id = instance_id
    uvicorn.run(build_app(container), **common)
