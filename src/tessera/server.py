"""Running the ASGI application: one process, or several worker processes sharing the port.

Several workers share the port, each on a listening socket of its own; on SQLite they share the
file, taking turns at its write lock (store/group_commit.py). Each worker builds its own
Container from the settings handed over by the parent; nothing is shared in memory, so any
number of processes, on one machine or many, can serve the same database.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

from . import serving
from .app import build_asgi_app
from .config import Settings
from .container import Container
from .crypto.passwords import threads_per_process


def _encode(settings: Settings) -> str:
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(settings).items()})


def _decode(raw: str) -> Settings:
    values: dict[str, Any] = json.loads(raw)
    values["data_dir"] = Path(values["data_dir"])
    return Settings(**values)


def _worker(encoded_settings: str, instance_id: str, listeners: serving.Listeners) -> None:
    """Each worker process: its own Container, serving the sockets the parent bound."""
    settings = _decode(encoded_settings)
    container = Container(settings)
    container.instance_id = instance_id
    serving.run(build_asgi_app(container), settings, listeners)


def worker_settings(settings: Settings, workers: int) -> Settings:
    """The settings each of ``workers`` processes runs with: unless set, the cores are shared out
    over the processes for password hashing, instead of every process hashing on every core."""
    if settings.password_hashing_threads:
        return settings
    return dataclasses.replace(settings, password_hashing_threads=threads_per_process(workers))


def serve(settings: Settings, instance_id: str, *, workers: int = 1) -> None:
    """HTTP/1.1 on ``port`` and gRPC on ``grpc_port``, in one process or ``workers`` processes."""
    if workers > 1:
        each = serving.bind_each(settings, workers)
        serving.supervise(functools.partial(_worker, _encode(worker_settings(settings, workers)), instance_id), each)
        return
    listeners = serving.bind(settings)
    container = Container(settings)
    container.instance_id = instance_id
    serving.run(build_asgi_app(container), settings, listeners)
