"""Talking to a Label Studio server: where it is, the token, and errors as one line.

The URL and token come from ``--url``/``--token``, else ``$LABEL_STUDIO_URL``/
``$LABEL_STUDIO_API_KEY`` (a team server), else the server ``ferdata review server start``
runs (:mod:`ferdata.review.server`). The token only ever travels in the client's
Authorization header: it is never part of a message or a log line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ferdata.errors import FerdataError

ENV_URL = "LABEL_STUDIO_URL"
ENV_TOKEN = "LABEL_STUDIO_API_KEY"
TIMEOUT_S = 30.0


class ServerError(FerdataError):
    """Label Studio could not be reached, refused the token, or failed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Connection:
    """An authenticated client and the URL it talks to (for messages)."""

    url: str
    client: Any = field(repr=False)
    #: The managed server's local-files document root (``None`` for any other server).
    document_root: Path | None = None

    @contextlib.contextmanager
    def calling(self, what: str) -> Iterator[None]:
        """Translate what can go wrong in an API call into one actionable line."""
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except ApiError as exc:
            raise translate_status(self.url, exc.status_code, what, exc.body) from None
        except httpx.TimeoutException:
            raise ServerError(f"Label Studio at {self.url} did not answer in time while {what}; "
                              "check that the server is healthy and try again") from None
        except httpx.TransportError as exc:
            raise ServerError(f"cannot reach Label Studio at {self.url} while {what} ({type(exc).__name__}); "
                              f"start the server or fix --url / ${ENV_URL}") from None


def translate_status(url: str, status: int | None, what: str, body: Any = None) -> ServerError:
    if status in (401, 403):
        return ServerError(f"Label Studio at {url} refused the API token (HTTP {status}) while {what}; "
                           f"check --token / ${ENV_TOKEN} (a legacy token needs the server's "
                           "--enable-legacy-api-token)", status)
    if status is not None and status >= 500:
        return ServerError(f"Label Studio at {url} failed (HTTP {status}) while {what}; "
                           "check the server's log and try again", status)
    detail = _short(body)
    return ServerError(f"Label Studio at {url} rejected {what} (HTTP {status}{': ' + detail if detail else ''})",
                       status)


def _short(body: Any, limit: int = 200) -> str:
    if body is None:
        return ""
    if isinstance(body, dict):
        body = body.get("detail") or body.get("validation_errors") or body
    text = " ".join(str(body).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def connect(url: str | None = None, token: str | None = None, *, httpx_client: httpx.Client | None = None) -> Connection:
    """A client for the server at ``url`` (or ``$LABEL_STUDIO_URL``) with ``token`` (or
    ``$LABEL_STUDIO_API_KEY``); where neither names a server (or the URL is the managed
    server's), the managed local server and its stored token. Nothing is sent until the
    first call."""
    from label_studio_sdk import LabelStudio

    from ferdata.review import server

    url = (url or os.environ.get(ENV_URL) or "").strip().rstrip("/")
    token = token or os.environ.get(ENV_TOKEN)
    doc_root = None
    if not url or not token:
        local = server.managed()
        if local is not None and (not url or _same_server(url, local.url)):
            url, token = url or local.url, token or local.token
            doc_root = local.document_root
    if not url:
        raise FerdataError(f"no Label Studio server: start one with 'ferdata review server start', or set ${ENV_URL} "
                           f"and ${ENV_TOKEN} (or pass --url) for a team server")
    if not url.startswith(("http://", "https://")):
        raise FerdataError(f"--url {url!r} is not an http(s) URL; e.g. http://localhost:8080")
    if not token:
        raise FerdataError(f"no Label Studio API token for {url}; set ${ENV_TOKEN} (Account & Settings → Access Token)")
    client = LabelStudio(base_url=url, api_key=token, timeout=None if httpx_client else TIMEOUT_S,
                         httpx_client=httpx_client)
    return Connection(url, client, doc_root)


def _same_server(a: str, b: str) -> bool:
    from urllib.parse import urlparse

    pa, pb = urlparse(a), urlparse(b)
    local = {"localhost", "127.0.0.1", "::1"}
    same_host = pa.hostname == pb.hostname or (pa.hostname in local and pb.hostname in local)
    return same_host and (pa.port or 80) == (pb.port or 80) and pa.scheme == pb.scheme
