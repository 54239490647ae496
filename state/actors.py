"""Who did what: the actor recorded on every accepted update (StateUpdate) and every change-log entry (StateChange).

An Actor is four short strings, written as four extra values of the existing
INSERTs (intake.accept, changelog.append): the user (operator, service user or
the OS user of an admin command), the source (kinds.Source), the credential it
came through (an id, never the secret) and the client address.
"""

import getpass
from typing import NamedTuple

from accounts.caller import request_identity
from subclouds.errors import Refused

from .kinds import Source

# The optional request header that names the source of a REST call (dcorch, audit... clients send nothing).
SOURCE_HEADER = "X-Dcportal-Source"
SOURCES = tuple(Source.values)


class Actor(NamedTuple):
    """Column order of StateUpdate / StateChange's actor columns (the worker builds one from a row slice)."""

    user: str = ""
    source: str = Source.SYSTEM
    via: str = ""
    address: str = ""

    def columns(self):
        return {"actor": self.user[:150], "source": self.source, "actor_via": self.via[:64], "actor_address": self.address[:45]}

    @classmethod
    def command(cls):
        """An admin command on the controller: the OS user who ran it."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a bare container)
            user = ""
        return cls(user=user, source=Source.COMMAND, via="manage.py")

    @classmethod
    def of_request(cls, request, default_source=None):
        """The actor of a REST or page request.

        Source: the X-Dcportal-Source header when given (refused unless one of Source), else
        `default_source` (what the endpoint's usual caller is), else "page" for a session, "rest" for a token.
        """
        user, via, address = request_identity(request)
        source = request.headers.get(SOURCE_HEADER)
        if source is not None:
            source = source.strip()
            if source not in SOURCES:
                raise Refused.at(SOURCE_HEADER, f"must be one of {', '.join(SOURCES)}")
        else:
            source = default_source or (Source.PAGE if via.startswith("session") else Source.REST)
        return cls(user, source, via, address)


SYSTEM = Actor()
COLUMNS = ("actor", "source", "actor_via", "actor_address")
