"""Parsing a bulk unit import (CSV, stdlib :mod:`csv`) into validated rows.

The file has a header naming exactly :data:`COLUMNS` (in any order) and one unit a row. Each
row is structured into :class:`~propmubi_plugins.catalog.units.models.UnitIn` with the same
rules as the JSON API (numbers given as text); every problem of every row is collected, so the
builder fixes the whole file in one round trip: a row with a bad cell still has its other
cells checked, also against its tower and the project (``service.import_units``). Errors are
422 problem+json whose ``errors`` items carry ``row`` (1 = the first data row), ``line`` (in
the file, header = 1), ``column`` and ``message``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import attrs

from propmubi.errors import FieldError, ValidationFailed
from propmubi.validation import query_converter, structure_input
from propmubi_plugins.catalog.models import control_character_problem
from propmubi_plugins.catalog.units.models import CROSS_CHECKED, UnitIn

#: The columns of an import file.
COLUMNS = ("tower", "code", "unit_type", "bedrooms", "carpet_area_sqft", "super_area_sqft",
           "floor", "facing", "price_minor", "currency", "status")
#: Columns that may be left empty (super area and facing unknown; currency and status take
#: their defaults, INR and available).
OPTIONAL = frozenset({"super_area_sqft", "facing", "currency", "status"})
#: Most rows one import takes (a big project's whole inventory); the byte size is capped by
#: ``http.max_body_bytes`` before the body is read.
MAX_ROWS = 5000
#: Most problems listed in one answer (a wholly wrong file would otherwise list thousands).
MAX_ERRORS = 200


@attrs.frozen
class ParsedRow:
    """One row of the right length: its position, its tower's name ("" when that cell is
    bad), the unit it describes (None when a cell is bad), and the values of the cells the
    cross-checks need (:data:`CROSS_CHECKED`) that are valid on their own."""

    row: int
    line: int
    tower: str
    unit: UnitIn | None
    values: dict[str, Any]


def row_error(row: int, line: int, column: str, message: str) -> FieldError:
    """A problem with one cell (or, with column ``""``, the whole row)."""
    error = FieldError("body", f"rows[{row}].{column}" if column else f"rows[{row}]", message)
    error.update(row=row, line=line, column=column)
    return error


def _file_error(message: str, column: str = "") -> FieldError:
    error = FieldError("body", column or "", message)
    error.update(row=0, line=1, column=column)
    return error


def rejected(errors: list[FieldError]) -> ValidationFailed:
    """The 422 for a file with bad rows (nothing was imported)."""
    shown = errors[:MAX_ERRORS]
    rows = len({e["row"] for e in errors})
    more = f" (first {MAX_ERRORS} shown)" if len(errors) > MAX_ERRORS else ""
    return ValidationFailed(shown, detail=f"{len(errors)} problems in {rows} rows{more}; "
                                          "nothing was imported")


def parse(text: str) -> tuple[list[ParsedRow], list[FieldError]]:
    """The rows of the file (``unit`` None for those with a bad cell) and every problem of
    their cells.

    A file that is not a unit list at all (empty, wrong header, no rows, too many rows)
    raises :class:`ValidationFailed` at once."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ValidationFailed([_file_error(f"not a CSV file: {exc}")]) from None
    if header is None or not any(h.strip() for h in header):
        raise ValidationFailed([_file_error("the file is empty; the first line must be the "
                                            f"header: {','.join(COLUMNS)}")])
    names = [h.strip().lower() for h in header]
    problems = []
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        problems.append(_file_error(f"missing columns: {', '.join(missing)}"))
    unknown = [h for h in names if h not in COLUMNS]
    if unknown:
        problems.append(_file_error(f"unknown columns: {', '.join(map(repr, unknown))}"))
    repeated = sorted({h for h in names if names.count(h) > 1})
    if repeated:
        problems.append(_file_error(f"repeated columns: {', '.join(repeated)}"))
    if problems:
        raise ValidationFailed(problems, detail="the header is wrong; expected the columns "
                                                f"{','.join(COLUMNS)}")
    parsed: list[ParsedRow] = []
    errors: list[FieldError] = []
    number = 0
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank lines (a trailing newline, spacing) are not rows
            number += 1
            if number > MAX_ROWS:
                raise ValidationFailed([_file_error(f"at most {MAX_ROWS} rows per import")])
            line = reader.line_num
            if len(cells) != len(names):
                errors.append(row_error(number, line, "", f"expected {len(names)} cells, "
                                                          f"got {len(cells)}"))
                continue
            parsed.append(_row(number, line, dict(zip(names, cells, strict=True)), errors))
    except csv.Error as exc:
        errors.append(row_error(number + 1, reader.line_num, "", f"unreadable CSV: {exc}"))
    if not parsed and not errors:
        raise ValidationFailed([_file_error("the file has a header but no rows")])
    return parsed, errors


def _row(number: int, line: int, cells: dict[str, str], errors: list[FieldError]
         ) -> ParsedRow:
    tower = cells.pop("tower").strip()
    bad = False
    problem = ("required" if not tower else "at most 100 characters" if len(tower) > 100
               else control_character_problem(tower))
    if problem:
        errors.append(row_error(number, line, "tower", problem))
        tower, bad = "", True
    data: dict[str, Any] = {}
    for column, value in cells.items():
        value = value.strip()
        if value:
            data[column] = value
        elif column not in OPTIONAL:
            errors.append(row_error(number, line, column, "required"))
            bad = True
    unit, problems = structure_input(data, UnitIn, "body", query_converter)
    refused = set()
    for found in problems:
        column = found["field"].split(".")[0].split("[")[0]
        refused.add(column)
        if column in data:  # missing cells are reported above
            errors.append(row_error(number, line, column, found["message"]))
            bad = True
    if unit is None and not bad:
        errors.append(row_error(number, line, "", "; ".join(p["message"] for p in problems)
                                or "invalid row"))
    return ParsedRow(row=number, line=line, tower=tower, unit=None if bad else unit,
                     values=_cross_checked(data, refused))


def _cross_checked(data: dict[str, Any], refused: set[str]) -> dict[str, Any]:
    """The cross-checked cells that are valid on their own, typed."""
    fields = attrs.fields_dict(attrs.resolve_types(UnitIn))
    values = {}
    for name in CROSS_CHECKED:
        if name in data and name not in refused:
            try:
                values[name] = query_converter.structure(
                    data[name], fields[name].type)  # type: ignore[arg-type]
            except (ValueError, TypeError):  # refused above, with its message
                continue
    return values
