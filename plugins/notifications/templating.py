"""Message templates: the one variable syntax of every channel, its checks, and rendering.

A variable is written ``{#name#}``: ``{#`` + a name (a lowercase letter, then lowercase
letters, digits or underscores; at most 32 characters) + ``#}``. It is India's DLT syntax
(an SMS template is registered with ``{#var#}`` where ours says ``{#name#}``), used for
e-mail and push too so that staff learn one syntax. Anything else that opens with ``{#`` or
closes with ``#}`` is a malformed placeholder and refused.

SMS templates obey the DLT rules when they are created, not when they are sent: at most
:data:`DLT_MAX_VARIABLES` variables, and never two in a row (with nothing but whitespace
between them).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

import attrs

__all__ = ["DLT_MAX_VARIABLES", "NAME", "Placeholder", "TemplateSyntaxError", "dlt_problems",
           "placeholders", "render"]

#: A variable's name.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_PLACEHOLDER = re.compile(r"\{#([a-z][a-z0-9_]{0,31})#\}")
_OPEN_OR_CLOSE = re.compile(r"\{#|#\}")
#: Variables an SMS template may hold (DLT).
DLT_MAX_VARIABLES = 2


class TemplateSyntaxError(ValueError):
    """A malformed placeholder; the message says where and what is expected."""


@attrs.frozen
class Placeholder:
    """One ``{#name#}`` in a text, with its position."""

    name: str
    start: int
    end: int


def placeholders(text: str) -> list[Placeholder]:
    """The placeholders of ``text`` in order.

    :raises TemplateSyntaxError: a ``{#`` or ``#}`` that is not part of a well-formed
        ``{#name#}``.
    """
    found: list[Placeholder] = []
    position = 0
    while (mark := _OPEN_OR_CLOSE.search(text, position)) is not None:
        match = _PLACEHOLDER.match(text, mark.start()) if mark.group() == "{#" else None
        if match is None:
            snippet = text[mark.start():mark.start() + 20]
            raise TemplateSyntaxError(
                f"malformed placeholder at character {mark.start() + 1} ({snippet!r}): write "
                "variables as {#name#} with a lowercase name (letters, digits, underscores)")
        found.append(Placeholder(match.group(1), match.start(), match.end()))
        position = match.end()
    return found


def dlt_problems(found: list[Placeholder], text: str) -> list[str]:
    """What DLT refuses in an SMS body with these placeholders (empty when it is fine)."""
    problems = []
    if len(found) > DLT_MAX_VARIABLES:
        problems.append(f"an SMS template may hold at most {DLT_MAX_VARIABLES} variables "
                        f"(DLT); this one has {len(found)}")
    for first, second in itertools.pairwise(found):
        if not text[first.end:second.start].strip():
            problems.append(f"{{#{first.name}#}} and {{#{second.name}#}} are in a row: DLT "
                            "refuses two variables without text between them")
            break
    return problems


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{#name#}`` replaced by its value.

    :raises KeyError: a variable without a value (its name).
    """
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
