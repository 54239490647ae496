"""The rules for subcloud names, region names and group names, in one place.

Upstream dcmanager's `validate_name` (dcmanager/common/utils.py): not empty, not
digits only (they would read as an id), at most 255 characters, none of the
regular-expression characters `.*+?|()[]{}^$`, not a reserved name (compared
case-insensitively). On top of that every name must show and print safely and
have a working detail page: no control character, no bidi override / isolate /
mark (a name that reorders the text around it), no `/` (it would split the URL),
no leading or trailing whitespace (refused, never trimmed: what is stored is what
was sent). Region names keep their narrow alphabet (`[A-Za-z0-9_.-]`, which
dcmanager's generated hex fits) and must not be digits only either.

Used by subclouds/inputs.py (REST API and admin commands) and by the database
system check (subclouds/checks.py), which reports rows stored before these rules.
"""

import re
import unicodedata

MAX_LENGTH = 255
REGEX_CHARS = ".*+?|()[]{}^$"
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# The system controller's own region names (dcmanager: "name cannot be RegionOne or SystemController").
RESERVED_SUBCLOUD_NAMES = ("SystemController", "RegionOne")
RESERVED_GROUP_NAMES = ("Default",)
REGION_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,255}$"
REGION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")


def _char_problem(char):
    category = unicodedata.category(char)
    if category == "Cc":
        return f"must not contain the control character {ascii(char)}"
    if category in ("Zl", "Zp"):  # U+2028, U+2029: line breaks to str.splitlines and some terminals
        return f"must not contain the line separator {ascii(char)}"
    if char in BIDI_CONTROLS:
        return f"must not contain the bidirectional control {ascii(char)}"
    if char == "/":
        return "must not contain '/'"
    if char in REGEX_CHARS:
        return f"must not contain any of {REGEX_CHARS}"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return "must not contain a lone surrogate"
    return None


def is_reserved(value, reserved):
    return value.casefold() in {r.casefold() for r in reserved}


def name_problem(value, what, reserved=()):
    """Why `value` cannot be a `what` ("subcloud", "group") name; None when it can."""
    if not value:
        return f"{what} name must not be empty"
    if value != value.strip():
        return f"{what} name must not start or end with whitespace"
    if value.isdigit():
        return f"{what} name must contain alphabetic characters"
    if len(value) > MAX_LENGTH:
        return f"{what} name must have at most {MAX_LENGTH} characters"
    for char in value:
        problem = _char_problem(char)
        if problem:
            return f"{what} name {problem}"
    if is_reserved(value, reserved):
        return f"{what} name cannot be {value!r}: it is reserved ({', '.join(reserved)})"
    return None


def subcloud_name_problem(value):
    return name_problem(value, "subcloud", RESERVED_SUBCLOUD_NAMES)


def group_name_problem(value):
    # "Default" itself is the existing group: create_group / update_group answer 409 for it.
    return name_problem(value, "group")


def region_name_problem(value):
    if not REGION_NAME.fullmatch(value):
        return "region name must be 1 to 255 of the characters A-Z a-z 0-9 _ . -"
    if value.isdigit():
        return "region name must contain alphabetic characters"
    if is_reserved(value, RESERVED_SUBCLOUD_NAMES):
        return f"region name cannot be {value!r}: it is reserved ({', '.join(RESERVED_SUBCLOUD_NAMES)})"
    return None
