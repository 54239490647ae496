"""Login throttling (django-axes): wrong passwords lock a username and an address on every password entry point.

Through the real views: the portal's /login/, the admin's /admin/login/, and a JSON identity view calling
authenticate(request=request, ...) as the Keystone-compatible endpoint does.
"""

import io
import secrets
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from dcportal.urls import urlpatterns as product_urlpatterns
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "pw-12345678"  # make_user's
LIMIT = settings.AXES_FAILURE_LIMIT
LOGIN_PAGES = ["/login/", "/admin/login/"]


class PasswordTokenView(APIView):
    """Stands in for the Keystone-compatible identity endpoint: JSON in, authenticate(request=...) inside."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        user = authenticate(request=request, username=request.data.get("name"), password=request.data.get("password"))
        if user is None:
            return Response({"error_message": "The request you have made requires authentication.", "field": None,
                             "errors": {}}, status=401)
        return Response({"user": user.username}, status=201)


urlpatterns = [*product_urlpatterns, path("test/auth/tokens", PasswordTokenView.as_view())]


def staff(persona="superuser"):
    user = make_user(persona)
    user.is_staff = True
    user.save()
    return user


def post_login(page, username, password, ip="10.0.0.1", client=None):
    client = client or Client()
    return client, client.post(page, {"username": username, "password": password}, REMOTE_ADDR=ip)


def logged_in(client):
    return "_auth_user_id" in client.session


def assert_locked(response):
    assert response.status_code == 429, (response.status_code, response.content[:300])
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))


def assert_logs_in(page, username, ip="10.0.0.1"):
    client, r = post_login(page, username, PASSWORD, ip=ip)
    assert r.status_code == 302, (r.status_code, r.content[:300])
    assert logged_in(client)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_it_locks_a_username_after_the_limit_even_with_the_right_password(page):
    user = staff()
    for attempt in range(1, LIMIT):
        _, r = post_login(page, user.username, f"wrong-{attempt}")
        assert r.status_code == 200  # the form again, with its error
    _, r = post_login(page, user.username, "wrong-last")
    assert_locked(r)
    assert b"Too many failed logins" in r.content
    client, r = post_login(page, user.username, PASSWORD)
    assert_locked(r)
    assert not logged_in(client)
    # Per username: another address does not get the locked user in either.
    client, r = post_login(page, user.username, PASSWORD, ip="10.9.9.9")
    assert_locked(r)
    assert not logged_in(client)
    # Other users from other addresses are not affected.
    assert_logs_in(page, staff().username, ip="10.9.9.9")


def test_it_counts_both_login_pages_together():
    user = staff()
    for attempt in range(LIMIT - 1):
        post_login(LOGIN_PAGES[attempt % 2], user.username, "wrong")
    _, r = post_login("/admin/login/" if (LIMIT - 1) % 2 else "/login/", user.username, "wrong")
    assert_locked(r)
    for page in LOGIN_PAGES:
        assert_locked(post_login(page, user.username, PASSWORD, ip="10.7.7.7")[1])


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_it_locks_an_address_across_usernames(page):
    victim = staff()
    for attempt in range(LIMIT):
        _, r = post_login(page, f"guess-{attempt}", "wrong", ip="10.6.6.6")
    assert_locked(r)
    client, r = post_login(page, victim.username, PASSWORD, ip="10.6.6.6")
    assert_locked(r)
    assert not logged_in(client)
    # The same user from another address is fine: only the address is locked.
    assert_logs_in(page, victim.username, ip="10.5.5.5")


def test_it_unlocks_after_the_cool_off():
    user = staff()
    for _ in range(LIMIT):
        post_login("/login/", user.username, "wrong")
    assert_locked(post_login("/login/", user.username, PASSWORD)[1])
    # As if the cool-off had passed since the last failure.
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME
                                 - timedelta(seconds=1))
    assert_logs_in("/login/", user.username)


def test_it_unlocks_a_username_with_the_reset_command():
    user, other = staff(), staff()
    for _ in range(LIMIT):
        post_login("/login/", user.username, "wrong", ip="10.1.1.1")
    for _ in range(LIMIT):
        post_login("/login/", other.username, "wrong", ip="10.1.1.2")
    assert_locked(post_login("/login/", user.username, PASSWORD, ip="10.3.3.3")[1])
    call_command("axes_reset_username", user.username, stdout=io.StringIO())
    assert_logs_in("/login/", user.username, ip="10.3.3.3")
    # Only that username: the other stays locked.
    assert_locked(post_login("/login/", other.username, PASSWORD, ip="10.3.3.3")[1])


def test_it_unlocks_an_address_with_the_reset_command():
    user = staff()
    for attempt in range(LIMIT):
        post_login("/admin/login/", f"guess-{attempt}", "wrong", ip="10.2.2.2")
    assert_locked(post_login("/admin/login/", user.username, PASSWORD, ip="10.2.2.2")[1])
    call_command("axes_reset_ip", "10.2.2.2", stdout=io.StringIO())
    assert_logs_in("/admin/login/", user.username, ip="10.2.2.2")


def test_it_answers_json_clients_with_the_api_error_shape():
    user = staff()
    for _ in range(LIMIT):
        post_login("/login/", user.username, "wrong")
    r = Client().post("/login/", {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.0.0.1",
                      HTTP_ACCEPT="application/json")
    assert_locked(r)
    body = r.json()
    assert set(body) == {"error_message", "field", "errors"}
    assert "Too many failed logins" in body["error_message"]


@pytest.mark.urls(__name__)
def test_it_applies_the_same_limits_to_a_json_identity_endpoint():
    """authenticate(request=request, ...) from a DRF view shares the counters and answers 429 when locked."""
    user = make_user("reader")
    client = APIClient(REMOTE_ADDR="10.4.4.4")
    ok = client.post("/test/auth/tokens", {"name": user.username, "password": PASSWORD}, format="json")
    assert ok.status_code == 201, ok.content
    for _ in range(LIMIT - 1):
        r = client.post("/test/auth/tokens", {"name": user.username, "password": "wrong"}, format="json")
        assert r.status_code == 401
    # The last failures come from the login page: one counter per username, whatever the entry point.
    _, r = post_login("/login/", user.username, "wrong", ip="10.4.4.5")
    assert_locked(r)
    r = client.post("/test/auth/tokens", {"name": user.username, "password": PASSWORD}, format="json")
    assert_locked(r)
    assert set(r.json()) == {"error_message", "field", "errors"}
    assert "user" not in r.json()
    # Failures through the endpoint alone: the one reaching the limit already answers 429.
    other, client = make_user("reader"), APIClient(REMOTE_ADDR="10.4.4.6")
    codes = [client.post("/test/auth/tokens", {"name": other.username, "password": "wrong"}, format="json").status_code
             for _ in range(LIMIT)]
    assert codes == [401] * (LIMIT - 1) + [429]


def test_it_refuses_a_direct_password_check_without_a_request():
    """A password check that bypasses the counters would be a way round them: axes refuses it outright."""
    user = make_user("reader")
    with pytest.raises(ValueError):
        authenticate(username=user.username, password=PASSWORD)


# -- password validation -----------------------------------------------------------------------


@pytest.mark.parametrize("password", ["qwertyuiop", "password123", "short1"])
def test_it_refuses_a_weak_password_in_ensure_admin(password):
    with pytest.raises(CommandError) as caught:
        call_command("ensure_admin", "--username", "root", "--password", password, stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert "password refused" in str(caught.value)
    assert not get_user_model().objects.filter(username="root").exists()


def test_it_keeps_the_old_password_when_ensure_admin_refuses_a_new_one():
    call_command("ensure_admin", "--username", "root", "--password", "pw-12345678", stderr=io.StringIO())
    with pytest.raises(CommandError):
        call_command("ensure_admin", "--username", "root", "--password", "password123", stderr=io.StringIO())
    assert get_user_model().objects.get(username="root").check_password("pw-12345678")


def test_it_accepts_the_passwords_of_dev_up_and_of_the_test_personas():
    generated = secrets.token_urlsafe(12)  # dcportal/dev.py admin_password()
    call_command("ensure_admin", "--username", "admin", "--password", generated, stderr=io.StringIO())
    assert get_user_model().objects.get(username="admin").check_password(generated)
    validate_password(PASSWORD)
