"""Multipart uploads parsed in memory, so that nothing a request sends is ever written to disk."""

from __future__ import annotations

import logging

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from fst.serve.limits import ApiError

#: python-multipart logs each parse error as a warning before raising it; the 400 says all the client needs.
_PARSER_LOG = logging.getLogger(f"{__name__}.parser")
_PARSER_LOG.setLevel(logging.ERROR)
#: The most parts a multipart body may have (the image and a few parameters).
MAX_PARTS = 16


def parse_multipart(body: bytes, content_type: str) -> tuple[bytes, dict[str, str]]:
    """The file and the text fields of a multipart/form-data body, parsed in memory."""
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart upload without a boundary")
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    header = [b"", b""]
    ended = []

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise ApiError(400, f"multipart upload with more than {MAX_PARTS} parts")
        parts.append(({}, bytearray()))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        parts[-1][0][header[0].lower()] = header[1]
        header[:] = [b"", b""]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_part_data": on_part_data, "on_end": lambda: ended.append(True)})
    parser.logger = _PARSER_LOG
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise ApiError(400, "malformed multipart upload: not multipart/form-data with the boundary its "
                            "Content-Type names; send one image as the field 'image'") from None
    if not ended:
        raise ApiError(400, "incomplete multipart upload (no closing boundary)")
    files, fields = [], {}
    for headers, data in parts:
        disposition = parse_options_header(headers.get(b"content-disposition", b""))[1]
        if b"filename" in disposition or disposition.get(b"name") == b"image":
            files.append(bytes(data))
        elif b"name" in disposition:
            fields[disposition[b"name"].decode("utf-8", "replace")] = data.decode("utf-8", "replace")
    if len(files) != 1:
        raise ApiError(400, f"multipart upload with {len(files)} files; send one image (field name 'image')")
    return files[0], fields
