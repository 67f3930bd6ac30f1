"""Response classes shared by the routes."""

from __future__ import annotations

from fastapi import Response


class JsonBytes(Response):
    """A body that is already JSON (from the response cache): sent as is, not re-validated."""

    media_type = "application/json"
