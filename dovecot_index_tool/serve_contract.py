"""What ``serve`` promises: its OpenAPI 3.1 document, the tokens it accepts (kept only as
SHA-256 hashes) and the rate each token may ask at."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from pathlib import Path

OPERATOR = "*"
HASHED = "sha256:"
RATE = 5.0  # requests per second per token, on average
BURST = 30  # requests a token may make at once


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: Path) -> dict[str, str]:
    """``TOKEN TENANT`` or ``sha256:HEX TENANT`` per line (``*`` for the operator); #
    comments. Returns hash -> tenant: a token itself is never kept."""
    tokens = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not _valid(parts[0]):
            raise ValueError(f"{path}:{number}: want 'TOKEN TENANT' with a token of 16+ chars,"
                             " or 'sha256:HEX TENANT'")
        key = parts[0]
        tokens[key[len(HASHED):].lower() if key.startswith(HASHED) else token_hash(key)] = \
            parts[1].strip()
    return tokens


def _valid(key: str) -> bool:
    if key.startswith(HASHED):
        digest = key[len(HASHED):]
        return len(digest) == 64 and all(c in "0123456789abcdefABCDEF" for c in digest)
    return len(key) >= 16


def tenant_of(tokens: dict[str, str], given: str) -> str | None:
    """The tenant of the token ``given`` (``*``: the operator), None if it is none."""
    digest = token_hash(given)
    for known, tenant in tokens.items():
        if hmac.compare_digest(digest, known):
            return tenant
    return None


class RateLimit:
    """A token bucket per token hash: ``burst`` at once, then ``rate`` per second."""

    def __init__(self, rate: float = RATE, burst: int = BURST) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def wait(self, key: str) -> float:
        """0 if the request may go ahead (and is counted), else seconds to wait."""
        now = time.monotonic()
        with self.lock:
            level, last = self.buckets.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - last) * self.rate)
            if level < 1:
                self.buckets[key] = (level, now)
                return (1 - level) / self.rate
            self.buckets[key] = (level - 1, now)
            return 0.0


def _get(summary: str, media: str, schema: dict) -> dict:
    return {
        "summary": summary,
        "parameters": [
            {"name": "tenant", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "The operator's token only: one tenant instead of all."},
        ],
        "responses": {
            "200": {"description": summary, "content": {media: {"schema": schema}}},
            "401": {"description": "no valid token",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            "429": {"description": "too many requests for this token",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
        },
    }


STATUS_SCHEMA = {
    "type": "object",
    "required": ["page", "status", "components", "incidents"],
    "properties": {
        "page": {"type": "object", "required": ["id", "name", "url", "updated_at"]},
        "status": {"type": "object", "required": ["indicator", "description"],
                   "properties": {"indicator": {"enum": ["none", "minor", "major", "critical"]},
                                  "description": {"type": "string"}}},
        "components": {"type": "array", "items": {
            "type": "object", "required": ["id", "name", "status", "group_id", "group"],
            "properties": {"status": {"enum": [
                "operational", "degraded_performance", "partial_outage", "major_outage",
                "under_maintenance"]}}}},
        "incidents": {"type": "array", "items": {"type": "object"}},
    },
}


def openapi() -> dict[str, object]:
    """The OpenAPI 3.1 document of every endpoint ``serve`` has."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "dovecot-index-tool status", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/": {"get": _get("the report page", "text/html", {"type": "string"})},
            "/status.json": {"get": _get("the Statuspage summary", "application/json",
                                         STATUS_SCHEMA)},
            "/feed.atom": {"get": _get("one entry per state change", "application/atom+xml",
                                       {"type": "string"})},
            "/openapi.json": {"get": {
                "summary": "this document", "security": [],
                "responses": {"200": {"description": "this document", "content": {
                    "application/json": {"schema": {"type": "object"}}}}},
            }},
        },
    }
