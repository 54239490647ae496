"""Who may do what: readers read, operators change inventory, services post state."""

from rest_framework import permissions

from .roles import OPERATOR, READER, SERVICE, SUPERUSER, role_of


class _RolePermission(permissions.BasePermission):
    read_roles = (READER, OPERATOR, SERVICE, SUPERUSER)
    write_roles = (SUPERUSER,)
    message = "Your role does not allow this."

    def has_permission(self, request, view):
        role = role_of(request.user)
        if request.method in permissions.SAFE_METHODS:
            return role in self.read_roles
        return role in self.write_roles


class IsReader(_RolePermission):
    """Read for every role; change only for superusers."""


class IsOperator(_RolePermission):
    """Read for every role; change for operators."""

    write_roles = (OPERATOR, SUPERUSER)


class IsService(_RolePermission):
    """Read for every role; state updates for the service role."""

    write_roles = (SERVICE, SUPERUSER)
