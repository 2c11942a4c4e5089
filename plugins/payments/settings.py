"""The plugin's settings: its ``[plugins.payments]`` table.

One attrs class, every field with a default. The core reads the table (propmubi.toml,
credential files, variables ``PROPMUBI_PLUGINS__PAYMENTS__<KEY>``),
structures it into this class once at start, and hands the result to every part of the
plugin as ``ctx.settings``. A bad value stops the process with a message naming the key
(``plugins.payments.<key>``). Mark secrets with ``metadata={"secret": True}``
so that ``propmubi config`` hides them.
"""

from __future__ import annotations

import attrs
from attrs import validators as v


@attrs.frozen
class PaymentsSettings:
    """How the payments plugin behaves."""

    #: Items per page when a caller asks for no particular number.
    page_size: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
