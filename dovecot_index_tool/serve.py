"""``serve``: the report page, the status JSON and the Atom feeds, read-only over HTTP.

Every request needs a token (``Authorization: Bearer TOKEN`` or ``?token=``). The
tokens file maps each token to one tenant, or to ``*`` for the operator, who sees every
tenant. A tenant's token never shows another tenant's mailboxes.
"""

from __future__ import annotations

import hmac
import io
from pathlib import Path

from flask import Flask, Response, abort, request

from dovecot_index_tool.errors import ToolError
from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.present.report_view import write_html
from dovecot_index_tool.report import Filters, build_report
from dovecot_index_tool.status import atom_feed, tenant_status

OPERATOR = "*"


def load_tokens(path: Path) -> dict[str, str]:
    """``TOKEN TENANT`` per line (``*`` for the operator); # comments."""
    tokens = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) < 16:
            raise ValueError(f"{path}:{number}: want 'TOKEN TENANT' with a token of 16+ chars")
        tokens[parts[0]] = parts[1].strip()
    return tokens


def create_app(db: str, tokens: dict[str, str]) -> Flask:
    app = Flask("dovecot_index_tool")

    def tenant_of_request() -> str | None:
        """The tenant this token may see; None for the operator (all tenants)."""
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else request.args.get("token", "")
        for token, tenant in tokens.items():
            if given and hmac.compare_digest(given, token):
                if tenant == OPERATOR:
                    return request.args.get("tenant") or None
                return tenant
        abort(
            Response(
                "a valid token is required\n",
                401,
                {"WWW-Authenticate": 'Bearer realm="dovecot-index-tool"'},
            )
        )
        return None

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
