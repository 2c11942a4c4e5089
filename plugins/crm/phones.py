"""Phone numbers as one person: every way of typing a number becomes its E.164 form.

The same approach as the auth plugin's sign-in (the ``phonenumbers`` library: parse with a
default region, keep only valid numbers, format as E.164), so the number of a signed-in buyer
and the number typed in an enquiry compare equal. ``98765 43210``, ``+91-98765-43210``,
``09876543210`` and ``919876543210`` are all ``+919876543210``.
"""

from __future__ import annotations

import phonenumbers

#: Longer input is not a phone number (and is not worth parsing).
MAX_INPUT = 40


def normalise(text: str, region: str) -> str | None:
    """The E.164 form of ``text`` (``+<country><number>``), or None when it is not a valid
    phone number (blank, letters, too short, an impossible number)."""
    if not text or len(text) > MAX_INPUT or not text.strip():
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
