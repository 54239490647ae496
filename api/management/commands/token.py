"""`manage.py token list|revoke`: see and revoke API tokens on the controller, no admin page needed.

Never prints a secret: only the stored prefix (the first 10 characters) identifies a token.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts import tokens
from accounts.models import ApiToken
from accounts.roles import role_of

from ..output import table


class Command(BaseCommand):
    help = "List API tokens or revoke them (by id, by prefix, or all of a user's)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        p = actions.add_parser("list", help="every token: id, prefix, user, role, created, expires (never the secret)")
        p.add_argument("--user", help="only this user's tokens")
        p = actions.add_parser("revoke", help="delete a token: it stops authenticating at once")
        p.add_argument("ref", nargs="?", help="token id or prefix (dcp_…), as `token list` shows")
        p.add_argument("--user", help="revoke every token of this user instead")

    def handle(self, *args, action, **options):
        getattr(self, f"do_{action}")(options)

    def do_list(self, options):
        rows = ApiToken.objects.select_related("user").order_by("id")
        if options["user"] is not None:
            rows = rows.filter(user__username=options["user"])
        columns = [
            ("id", lambda t: t.pk),
            ("prefix", lambda t: t.prefix),
            ("user", lambda t: t.user.username),
            ("role", lambda t: role_of(t.user) if t.user.is_active else "inactive"),
            ("created", lambda t: t.created_at.isoformat(timespec="seconds")),
            ("expires", lambda t: (t.expires_at.isoformat(timespec="seconds") + (" (expired)" if t.expired else ""))
             if t.expires_at else "never"),
            ("description", lambda t: t.description),
        ]
        self.stdout.write(table(list(rows), columns))

    def do_revoke(self, options):
        ref, user = options["ref"], options["user"]
        if (ref is None) == (user is None):
            raise CommandError("give either a token id / prefix or --user (not both)")
        try:
            ids = tokens.revoke(ref=ref, username=user)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"revoked {len(ids)} token{'s' if len(ids) != 1 else ''} (id {', '.join(map(str, ids))})")
