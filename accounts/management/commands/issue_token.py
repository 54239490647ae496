"""Create (if needed) a user with a role and print a new API token, and only that."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import ApiToken
from accounts.roles import ROLES, set_role
from accounts.tokens import expiry_after


class Command(BaseCommand):
    help = "Issue an API token for a user with the given role (the user is created if needed)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--description", default="")
        parser.add_argument("--expires-in", help="lifetime, e.g. 90d, 12h, 30m or seconds; default: never expires")
        parser.add_argument("--superuser-ok", action="store_true",
                            help="issue a token to an existing superuser even though it carries superuser rights")

    def handle(self, *args, user, role, description, expires_in, superuser_ok, **options):
        if not user.strip():
            raise CommandError("--user must not be empty")
        try:
            expires_at = expiry_after(expires_in)
        except ValueError as exc:
            raise CommandError(f"--expires-in: {exc}") from None
        with transaction.atomic():
            account, _ = get_user_model().objects.get_or_create(username=user)
            if account.is_superuser:
                # The role is a group; a superuser's token passes every role check whatever the group says.
                if not superuser_ok:
                    raise CommandError(f"{user} is a superuser: a token for it carries superuser rights, not the "
                                       f"{role} role. Pick another user, or pass --superuser-ok to issue it anyway.")
                self.stderr.write(f"note: {user} is a superuser; this token carries superuser rights, not the {role} role")
            set_role(account, role)
            _, token = ApiToken.objects.issue(account, description=description, expires_at=expires_at)
        self.stdout.write(token)
