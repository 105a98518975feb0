"""Shared set-up for the examples: connect to Tessera with the official ZITADEL SDK.

Set TESSERA_URL (default http://127.0.0.1:8080) and TESSERA_PAT (or TESSERA_PAT_FILE,
default ./.tessera/admin.pat) before running an example.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import zitadel_client


def url() -> str:
    return os.environ.get("TESSERA_URL", "http://127.0.0.1:8080")


def pat() -> str:
    if os.environ.get("TESSERA_PAT"):
        return os.environ["TESSERA_PAT"]
    return Path(os.environ.get("TESSERA_PAT_FILE", ".tessera/admin.pat")).read_text().strip()


def client() -> zitadel_client.Zitadel:
    return zitadel_client.Zitadel.with_access_token(url(), pat())


def encode_json(value: Any) -> str:
    """Session metadata values are bytes: send JSON as base64."""
    return base64.b64encode(json.dumps(value).encode()).decode()


def decode_json(value: str) -> Any:
    return json.loads(base64.b64decode(value))
