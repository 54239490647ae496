"""The one family of refusals: bad input, an unknown object, a conflict, a rule that says no.

Raised by inventory lookups, the state intake, the rules and the operations;
translated in one place each: HTTP in api/errors.py, the admin commands' exit
code and message in api/management/output.py. `field` names the offending field
as the client spelled it, and `errors` maps every offending field to its messages,
the same shape DRF's validation errors are flattened to.
"""


class Refused(Exception):
    """A request refused as it stands (HTTP 400); nothing was changed."""

    status = 400

    def __init__(self, message, field=None, errors=None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = errors if errors is not None else ({field: [message]} if field else {})

    @classmethod
    def at(cls, field, message):
        """A refusal of one field, its message prefixed with the field: "updates[3].subcloud: ...". """
        return cls(f"{field}: {message}", field, {field: [message]})


class NotFound(Refused):
    """The object referred to does not exist (404)."""

    status = 404


class Conflict(Refused):
    """The request collides with an existing object (409)."""

    status = 409
