"""Create or reset a superuser with a known password (used by ./dev up)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = "Create the superuser if missing and set its password (checked by AUTH_PASSWORD_VALIDATORS)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", required=True)

    def handle(self, *args, username, password, **options):
        User = get_user_model()
        try:
            # The same validators as the admin's password forms; a refused password changes nothing.
            validate_password(password, User(username=username))
        except ValidationError as exc:
            raise CommandError("password refused: " + " ".join(exc.messages)) from None
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
        self.stderr.write(f"superuser {username} {'created' if created else 'updated'}")
