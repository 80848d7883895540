"""HTML out of the viewer's templates, with the headers every viewer response carries.

Autoescaping is on for every template: memory text is shown as text, never as markup. Static
files are read once, named in pages with a digest of their content (``?v=``), and cached
by the browser for a year: a new release changes the digest.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from memlane.daemon.api.server import Response
from memlane.daemon.api.ui.chart import state_chart
from memlane.daemon.api.ui.words import describe

if TYPE_CHECKING:
    import jinja2

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
]
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".txt": "text/plain; charset=utf-8", ".LICENSE": "text/plain; charset=utf-8"}
_STATIC = resources.files("memlane.daemon.api.ui") / "static"
_WORD = re.compile(r"\w{2,}", re.UNICODE)


@cache
def static_file(name: str) -> tuple[bytes, str] | None:
    """(content, digest) of a shipped static file; None for any other name."""
    if "/" in name or name.startswith(".") or not _STATIC.joinpath(name).is_file():
        return None
    data = _STATIC.joinpath(name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:16]


def static_url(name: str) -> str:
    found = static_file(name)
    if found is None:
        raise LookupError(f"no static file {name}")
    return f"/ui/static/{name}?v={found[1]}"


def highlight(text: str | None, query: str) -> Markup:
    """``text`` escaped, with the query's words marked."""
    words = {w.lower() for w in _WORD.findall(query)}
    if not text or not words:
        return escape(text or "")
    pattern = re.compile("(" + "|".join(re.escape(w) for w in sorted(words, key=len,
                                                                      reverse=True)) + ")",
                         re.IGNORECASE)
    parts = pattern.split(text)
    return Markup("").join(Markup("<mark>{}</mark>").format(part) if i % 2 else escape(part)
                           for i, part in enumerate(parts))


@cache
def _environment() -> jinja2.Environment:
    """The templates' environment, built at the first page: jinja2 is not imported by a start
    (most daemons never serve the viewer)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("memlane.daemon.api.ui", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(static=static_url, describe=describe, state_chart=state_chart)
    env.filters["highlight"] = highlight
    return env


def page(template: str, status: int = 200, **context: Any) -> Response:
    body = _environment().get_template(template).render(**context).encode()
    return Response(status, body, "text/html; charset=utf-8",
                    [*SECURITY_HEADERS, ("cache-control", "no-store")])


def static_response(name: str) -> Response | None:
    found = static_file(name)
    if found is None:
        return None
    suffix = name[name.rfind("."):]
    return Response(200, found[0], CONTENT_TYPES.get(suffix, "application/octet-stream"),
                    [*SECURITY_HEADERS, ("cache-control", "private, max-age=31536000, immutable")])


def redirect(location: str, *headers: tuple[str, str]) -> Response:
    return Response(303, b"", "text/plain", [*SECURITY_HEADERS, ("location", location),
                                             ("cache-control", "no-store"), *headers])
