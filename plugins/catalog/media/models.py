"""Photos: the API's and the console's input classes (every field checked at the edge, naming
the field) and the shape of a photo in answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from attrs import validators as v

from propmubi.validation import json_schema
from propmubi_plugins.catalog.models import no_control_characters

#: Longest alternative text (screen readers read it whole; a caption belongs elsewhere).
ALT_TEXT_MAX = 300
#: Photos per gallery: galleries are answered whole, without pagination.
GALLERY_MAX = 100


# --------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------


@attrs.frozen
class KeyParams:
    key: str


@attrs.frozen
class PhotoUrls:
    original: str
    web: str
    thumb: str


@attrs.frozen
class Photo:
    """A photo of a project's (or a unit's) gallery."""

    id: uuid.UUID
    project_id: uuid.UUID
    unit_id: uuid.UUID | None
    position: int
    alt_text: str
    content_type: str
    width: int
    height: int
    bytes: int
    sha256: str
    urls: PhotoUrls
    created_at: dt.datetime
    updated_at: dt.datetime


# The route refuses a patch changing nothing (the document says so).
@json_schema(anyOf=[{"required": ["alt_text"], "properties": {"alt_text": {"type": "string"}}},
                    {"required": ["position"], "properties": {"position": {"type": "integer"}}}])
@attrs.frozen
class PhotoPatch:
    """What may change about a photo (give at least one)."""

    alt_text: str | None = attrs.field(
        default=None, validator=v.optional([v.min_len(1), v.max_len(ALT_TEXT_MAX),
                                            no_control_characters()]))
    position: int | None = attrs.field(
        default=None, validator=v.optional([v.ge(0), v.le(GALLERY_MAX)]))


@attrs.frozen
class PhotoForm:
    """A photo upload (multipart/form-data): documents the upload routes' body."""

    file: bytes = attrs.field(metadata={
        "description": "JPEG, PNG or WebP, at most plugins.catalog.max_upload_bytes."})
    alt_text: str = attrs.field(validator=[v.min_len(1), v.max_len(ALT_TEXT_MAX),
                                           no_control_characters()],
                                metadata={"description": "What the photo shows."})
    position: int | None = attrs.field(
        default=None, validator=v.optional([v.ge(0), v.le(GALLERY_MAX)]),
        metadata={"description": "0-based place in the gallery (default: last)."})


@attrs.frozen
class PhotoUpload:
    """An upload read and checked by a route or the console: the file's bytes, its trimmed
    alternative text and its 0-based place (None: last)."""

    data: bytes
    alt_text: str
    position: int | None = None


# --------------------------------------------------------------------------------------------
# Console forms (``propmubi.console.forms.read_form``); staff type 1-based places
# --------------------------------------------------------------------------------------------


def _alt_text(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    text = value.strip()
    if not text:
        raise ValueError("required: describe the photo for people who cannot see it")
    if len(text) > ALT_TEXT_MAX:
        raise ValueError(f"at most {ALT_TEXT_MAX} characters, got {len(text)}")


def _place(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and not 1 <= value <= GALLERY_MAX:
        raise ValueError(f"a number from 1 to {GALLERY_MAX}")


@attrs.frozen
class PhotoEditForm:
    """A photo's alternative text and its place (1-based; empty: keep it)."""

    # An empty box is an absent field: the default lets the validator say what is missing.
    alt_text: str = attrs.field(default="", validator=_alt_text)
    position: int | None = attrs.field(default=None, validator=_place)

    def patch(self) -> PhotoPatch:
        """The change as the API takes it (0-based place)."""
        return PhotoPatch(alt_text=self.alt_text,
                          position=None if self.position is None else self.position - 1)


@attrs.frozen
class PhotoUploadForm:
    """The text fields of the console's upload form (the file part is read apart)."""

    alt_text: str = attrs.field(default="", validator=_alt_text)
    position: int | None = attrs.field(default=None, validator=_place)
