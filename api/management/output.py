"""Output and errors of the admin commands: aligned tables for people, the API's own JSON with --json.

Commands print what representation.py builds, so `--json` is byte for byte the
API's response body; refusals go through the API's error mapping
(api/errors.py known_error), so the message is the API's too.
"""

from contextlib import contextmanager

from django.core.management.base import CommandError
from rest_framework.renderers import JSONRenderer

from api.errors import known_error


def add_json_option(parser):
    parser.add_argument("--json", action="store_true", help="print exactly the API's JSON instead of a table")


def api_json(data):
    """data as the API renders it (DRF's JSON renderer with the API's settings)."""
    return JSONRenderer().render(data).decode()


def printable(text):
    """text with every non-printable character (controls, bidi overrides, line breaks) as a \\x / \\u escape.

    Rows stored before the name rules (or any free text) must not move the cursor,
    recolour the terminal or reorder the table when printed.
    """
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def cell(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return printable(str(value))


def table(rows, columns):
    """Aligned columns under upper-case headers; columns are (header, function of a row)."""
    lines = [[header.upper() for header, _ in columns]]
    lines += [[cell(get(row)) for _, get in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def fields(pairs):
    """One object as a two-column FIELD / VALUE table, from (name, value) pairs."""
    return table(pairs, [("field", lambda pair: pair[0]), ("value", lambda pair: pair[1])])


def write(command, options, data, text):
    """The API's JSON of data with --json, otherwise text()."""
    command.stdout.write(api_json(data) if options["json"] else text())


@contextmanager
def refusals():
    """Invalid input and the services' refusals become a CommandError carrying the API's error_message."""
    try:
        yield
    except Exception as exc:
        known = known_error(exc)
        if known is None:
            raise
        raise CommandError(known[1]["error_message"]) from None
