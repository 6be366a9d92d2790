"""Upload bodies read as they arrive, never whole: a raw CSV body, or the file part of a
`multipart/form-data` form (what a browser's file input sends), with the form's small text
fields beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from api.errors import AppError

CSV_TYPES = frozenset(
    {
        "text/csv",
        "text/plain",
        "application/csv",
        "text/comma-separated-values",
        "text/tab-separated-values",
        # What Windows browsers label a .csv file with when Excel is installed.
        "application/vnd.ms-excel",
    }
)
FILE_FIELD = "file"
MAX_FIELD_BYTES = 1024


class UnsupportedUpload(AppError):
    status_code = 415


class Upload:
    """A CSV upload: its bytes (`chunks()`, read once), the file's name, and the form's text
    fields (those sent before the file are known when its first bytes arrive)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self.filename: str | None = None
        self.fields: dict[str, str] = {}

    def chunks(self) -> AsyncIterator[bytes]:
        return self._nonempty(self._request.stream())

    @staticmethod
    async def _nonempty(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for data in stream:
            if data:
                yield data


def csv_upload(request: Request) -> Upload:
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    kind = media_type.decode("latin-1").lower()
    if kind in CSV_TYPES:
        return Upload(request)
    if kind == "multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise AppError("multipart/form-data without a boundary")
        return FormUpload(request, boundary)
    raise UnsupportedUpload(
        "send the CSV file as the body (Content-Type: text/csv) or as the 'file' field of a"
        " multipart/form-data form"
    )


@dataclass
class _Part:
    name: str | None = None
    filename: str | None = None
    text: bytearray = field(default_factory=bytearray)


class FormUpload(Upload):
    def __init__(self, request: Request, boundary: bytes) -> None:
        super().__init__(request)
        self._boundary = boundary

    def chunks(self) -> AsyncIterator[bytes]:
        return self._nonempty(self._file_part())

    async def _file_part(self) -> AsyncIterator[bytes]:
        """The bytes of the form's `file` part as they arrive. The parser calls back with what
        it found in each piece of the body; the callbacks only queue it, this loop hands it
        on."""
        async for data in _form_file(self._request, self._boundary, self):
            yield data


async def _form_file(request: Request, boundary: bytes, upload: Upload) -> AsyncIterator[bytes]:
    events: list[tuple[str, bytes]] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}
    headers: dict[str, bytes] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        headers[header["field"].decode("latin-1").lower()] = header["value"]
        header["field"] = header["value"] = b""

    def on_headers_finished() -> None:
        events.append(("part", headers.get("content-disposition", b"")))
        headers.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(("data", bytes(data[start:end])))

    def on_part_end() -> None:
        events.append(("end", b""))

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    part: _Part | None = None
    found = False
    async for body in request.stream():
        try:
            parser.write(body)
        except MultipartParseError as exc:
            raise AppError(f"malformed multipart/form-data body: {exc}") from exc
        for kind, data in events:
            if kind == "part":
                _, params = parse_options_header(data)
                name = params.get(b"name")
                filename = params.get(b"filename")
                part = _Part(
                    name=name.decode("utf-8", "replace") if name is not None else None,
                    filename=filename.decode("utf-8", "replace") if filename is not None else None,
                )
                if part.name == FILE_FIELD:
                    if found:
                        raise AppError("the form carries more than one 'file' field")
                    found = True
                    upload.filename = part.filename
            elif kind == "data" and part is not None:
                if part.name == FILE_FIELD:
                    yield data
                else:
                    part.text += data
                    if len(part.text) > MAX_FIELD_BYTES:
                        raise AppError(f"the form field '{part.name}' is too long")
            elif kind == "end" and part is not None:
                if part.name is not None and part.name != FILE_FIELD:
                    upload.fields[part.name] = part.text.decode("utf-8", "replace")
                part = None
        events.clear()
    parser.finalize()
    if not found:
        raise AppError("the form has no 'file' field with the CSV file", status_code=422)
