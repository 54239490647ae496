"""Create (if needed) a user with a role and print a new API token, and only that."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import ApiToken
from accounts.roles import ROLES, set_role


class Command(BaseCommand):
    help = "Issue an API token for a user with the given role (the user is created if needed)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--description", default="")

    def handle(self, *args, user, role, description, **options):
        if not user.strip():
            raise CommandError("--user must not be empty")
        with transaction.atomic():
            account, _ = get_user_model().objects.get_or_create(username=user)
            set_role(account, role)
            _, token = ApiToken.objects.issue(account, description=description)
        self.stdout.write(token)
