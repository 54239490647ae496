"""Roles are Django groups with these names; a user holds at most one."""

from django.contrib.auth.models import Group

READER = "reader"
OPERATOR = "operator"
SERVICE = "service"
ROLES = (READER, OPERATOR, SERVICE)
SUPERUSER = "superuser"


def role_of(user):
    """The user's role name, 'superuser', or None for an outsider."""
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return SUPERUSER
    cached = getattr(user, "_dcportal_role", False)
    if cached is not False:
        return cached
    role = role_from_groups(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    user._dcportal_role = role
    return role


def role_from_groups(names):
    """The role a user holding these group names has (the strongest one), or None."""
    names = set(names or ())
    return next((r for r in (OPERATOR, SERVICE, READER) if r in names), None)


def set_role(user, role):
    """Give the user exactly this role (replacing any other)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    user.__dict__.pop("_dcportal_role", None)
