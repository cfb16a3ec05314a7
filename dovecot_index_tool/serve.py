"""``serve``: the report page, the status JSON and the Atom feeds, read-only over HTTP.

Every request but ``/openapi.json`` needs a token (``Authorization: Bearer TOKEN`` or
``?token=``). The tokens file maps each token (or its SHA-256 hash) to one tenant, or
to ``*`` for the operator, who sees every tenant. A tenant's token never shows another
tenant's mailboxes; each token is rate limited.
"""

from __future__ import annotations

import io
import math

from flask import Flask, Response, abort, request

from dovecot_index_tool.errors import ToolError
from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.present.report_view import write_html
from dovecot_index_tool.report import Filters, build_report
from dovecot_index_tool.serve_contract import (
    OPERATOR,
    RateLimit,
    load_tokens,
    openapi,
    tenant_of,
    token_hash,
)
from dovecot_index_tool.status import atom_feed, tenant_status

__all__ = ["bind", "create_app", "load_tokens"]

def create_app(db: str, tokens: dict[str, str], limit: RateLimit | None = None) -> Flask:
    """``tokens``: token hash -> tenant (``load_tokens``)."""
    app = Flask("dovecot_index_tool")
    limit = limit or RateLimit()

    def tenant_of_request() -> str | None:
        """The tenant this token may see; None for the operator (all tenants)."""
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else request.args.get("token", "")
        tenant = tenant_of(tokens, given) if given else None
        if tenant is None:
            abort(Response("a valid token is required\n", 401,
                           {"WWW-Authenticate": 'Bearer realm="dovecot-index-tool"'}))
        wait = limit.wait(token_hash(given))
        if wait:
            abort(Response("too many requests\n", 429, {"Retry-After": str(math.ceil(wait))}))
        if tenant == OPERATOR:
            return request.args.get("tenant") or None
        return tenant

    def queue() -> JobQueue:
        return JobQueue(Ledger.open(db))

    @app.get("/")
    def page() -> Response:
        tenant = tenant_of_request()
        out = io.StringIO()
        write_html(
            build_report(queue(), Filters(tenant=tenant)),
            out,
            title=f"Mailbox status: {tenant or 'all tenants'}",
        )
        return Response(out.getvalue(), mimetype="text/html")

    @app.get("/status.json")
    def status() -> Response:
        tenant = tenant_of_request()
        return app.json.response(tenant_status(queue(), tenant, base_url=request.host_url))

    @app.get("/feed.atom")
    def feed() -> Response:
        tenant = tenant_of_request()
        body = atom_feed(queue(), tenant, base_url=request.host_url.rstrip("/"))
        return Response(body, mimetype="application/atom+xml")

    @app.get("/openapi.json")
    def contract() -> Response:
        return app.json.response(openapi())

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'"
        )
        return response

    return app


def bind(db: str, tokens: dict[str, str], host: str, port: int):
    """The HTTP server, bound to its port (``.run()`` serves): a port in use is an error
    before anything says it is serving."""
    from waitress import create_server

    try:
        return create_server(create_app(db, tokens), host=host, port=port, threads=4)
    except OSError as err:
        raise ToolError(f"cannot serve on {host}:{port}: {err.strerror or err}") from None
