"""Strict readers of the environment for settings.py: a bad value stops the process, naming the variable.

django-environ's readers are lenient (DCPORTAL_DEBUG=ture is silently false, a
typo in a number raises a bare ValueError); these raise ImproperlyConfigured
with the variable, the value and what was expected. An unset or empty variable
gives the default.
"""

import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def _raw(name):
    value = os.environ.get(name, "").strip()
    return value or None


def _bad(name, value, expected):
    return ImproperlyConfigured(f"{name}={value!r}: expected {expected}")


def env_str(name, default=""):
    value = _raw(name)
    return default if value is None else value


def env_bool(name, default=False):
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise _bad(name, value, "one of yes/no, true/false, on/off, 1/0")


def _number(name, default, kind, minimum, maximum):
    value = _raw(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise _bad(name, value, "an integer" if kind is int else "a number") from None
    if number != number or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise _bad(name, value, f"a number in [{minimum if minimum is not None else '-inf'}, "
                                f"{maximum if maximum is not None else 'inf'}]")
    return number


def env_int(name, default=0, minimum=None, maximum=None):
    return _number(name, default, int, minimum, maximum)


def env_float(name, default=0.0, minimum=None, maximum=None):
    return _number(name, default, float, minimum, maximum)


def env_list(name, default=()):
    """Comma-separated; blanks around items are dropped, as are empty items."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_host_ports(name):
    """Comma-separated host:port items ([v6]:port for IPv6), as (host, port) pairs; anything else is refused."""
    pairs = []
    for item in env_list(name):
        host, sep, port = item.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        port_ok = port.isascii() and port.isdigit() and 0 < int(port) < 65536  # not "³": int() refuses it
        if not sep or not host or not port_ok or any(c in host for c in "/@[] "):
            raise _bad(name, os.environ.get(name), "comma-separated host:port items")
        pairs.append((host, int(port)))
    return pairs


def program(argv=None):
    """(program, arguments) of this process: "manage", "celery", "daphne", "pytest"... from sys.argv."""
    argv = list(sys.argv if argv is None else argv)
    path = Path(argv[0]) if argv and argv[0] else Path("python")
    # `python -m pkg` puts pkg/__main__.py in argv[0].
    prog = path.parent.name if path.name == "__main__.py" else path.name.removesuffix(".py")
    return prog, argv[1:]


def process_name(argv=None):
    """This process's name for PostgreSQL's application_name (pg_stat_activity).

    DCPORTAL_PROCESS_NAME when a launcher sets it, else derived from the command
    line: the state worker's --name, the Celery worker / beat, daphne, or the
    management command.
    """
    name = env_str("DCPORTAL_PROCESS_NAME")
    if name:
        return name[:63]
    prog, args = program(argv)
    if prog == "celery":
        sub = next((a for a in args if a in ("worker", "beat")), "celery")
        name = "dcportal-audit" if sub == "worker" else f"dcportal-audit-{sub}"
    elif prog == "daphne":
        name = "dcportal-api"
    elif prog == "manage" and args:
        name = f"dcportal-{args[0]}"
        if args[0] == "runworker" and "--name" in args[:-1]:
            name = f"dcportal-state/{args[args.index('--name') + 1]}"
    else:
        name = f"dcportal-{prog}"
    return name[:63]
