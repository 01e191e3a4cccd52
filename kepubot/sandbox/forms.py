"""Request bodies as the platforms read them: URL-encoded forms and ``multipart/form-data``.

The multipart parser is a small one of our own (``cgi`` is gone from the standard library):
the body is split on the boundary as bytes, so binary files come through untouched, and each
part's headers are read with :mod:`email`, which knows ``Content-Disposition`` parameters in
all their quoted and RFC 2231 forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.parser import Parser
from email.policy import compat32
from email.utils import collapse_rfc2231_value
from urllib.parse import parse_qs

from kepubot.sandbox.base import Request


class FormError(ValueError):
    """The body claims to be a form but cannot be read as one."""


@dataclass
class Part:
    """One part of a multipart body."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Form:
    """Text fields (query string first, then the body) and uploaded files by field name."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[Part]] = field(default_factory=dict)
    multipart: bool = False

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def file(self, name: str) -> Part | None:
        parts = self.files.get(name)
        return parts[0] if parts else None


def content_type(request: Request) -> tuple[str, Message]:
    """The request's media type (lower case) and the parsed header, for its parameters."""
    header = Message()
    header["Content-Type"] = request.headers.get("Content-Type") or "application/octet-stream"
    return header.get_content_type(), header


def read_form(request: Request, include_query: bool = True) -> Form:
    """The query parameters and the form body merged (body values win on a clash).

    A body that is neither URL-encoded nor multipart contributes nothing. Raises
    :class:`FormError` for a multipart body that cannot be parsed.
    """
    form = Form()
    if include_query:
        for name, values in request.query.items():
            form.fields.setdefault(name, []).extend(values)
    media_type, header = content_type(request)
    if media_type == "application/x-www-form-urlencoded":
        text = request.body.decode("utf-8", errors="replace")
        for name, values in parse_qs(text, keep_blank_values=True).items():
            form.fields.setdefault(name, []).extend(values)
    elif media_type == "multipart/form-data":
        form.multipart = True
        boundary = header.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise FormError("multipart body without a boundary")
        for part in parse_multipart(boundary, request.body):
            if part.filename is None:
                text = part.data.decode("utf-8", errors="replace")
                form.fields.setdefault(part.name, []).append(text)
            else:
                form.files.setdefault(part.name, []).append(part)
    return form


def parse_multipart(boundary: str, body: bytes) -> list[Part]:
    """Split ``body`` into its parts (RFC 7578); the preamble and epilogue are ignored."""
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start < 0:
        raise FormError("multipart body without its boundary")
    position = start + len(delimiter)
    parts: list[Part] = []
    while True:
        if body[position : position + 2] == b"--":
            return parts  # the close delimiter
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            raise FormError("multipart body ends inside a delimiter line")
        part_start = line_end + 2
        part_end = body.find(b"\r\n" + delimiter, part_start)
        if part_end < 0:
            raise FormError("multipart body without its closing boundary")
        parts.append(_part(body[part_start:part_end]))
        position = part_end + 2 + len(delimiter)


def _part(raw: bytes) -> Part:
    if raw.startswith(b"\r\n"):
        head, data = b"", raw[2:]
    else:
        head, separator, data = raw.partition(b"\r\n\r\n")
        if not separator:
            raise FormError("multipart part without a blank line after its headers")
    # Clients send non-ASCII file names as raw UTF-8 (the HTML5 way) or RFC 2231-encoded.
    headers = Parser(policy=compat32).parsestr(
        head.decode("utf-8", errors="replace") + "\r\n\r\n", headersonly=True
    )
    if headers.get_content_disposition() != "form-data":
        raise FormError("multipart part without Content-Disposition: form-data")
    name = headers.get_param("name", header="content-disposition")
    if name is None:
        raise FormError("multipart part without a name")
    filename = headers.get_filename()
    part_type = headers.get("Content-Type")
    return Part(
        name=collapse_rfc2231_value(name),
        filename=filename,
        content_type=(part_type or "").split(";")[0].strip().lower(),
        data=data,
    )


def image_type(data: bytes) -> str | None:
    """``jpeg``, ``png``, ``gif`` or ``bmp`` from the file's magic bytes, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    return None
