"""Strict readers of the environment for settings.py: a bad value stops the process, naming the variable.

django-environ's readers are lenient (DCPORTAL_DEBUG=ture is silently false, a
typo in a number raises a bare ValueError); these raise ImproperlyConfigured
with the variable, the value and what was expected. An unset or empty variable
gives the default.
"""

import os
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import environ
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


POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}
# libpq's values (PostgreSQL 14+); read-write makes a multi-host DSN find the primary (docs/ha.md).
SESSION_ATTRS = {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"}
DATABASE_URL_FORM = ("postgres://USER:PASSWORD@HOST:PORT[,HOST:PORT...]/DATABASE[?target_session_attrs=read-write] "
                     "or postgres://USER@/DATABASE?host=H1,H2&port=P1,P2")


def _masked(url):
    """The URL with its password replaced, fit for an error message or a log."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.partition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.split(':', 1)[0]}:***@{hosts}"
    return f"{scheme}{sep}{rest}"


def _port_ok(port):
    return port.isascii() and port.isdigit() and 0 < int(port) < 65536


def env_database_url(name, default):
    """DATABASES["default"] from a libpq URL, one host or several (a primary and its standbys, docs/ha.md).

    django-environ reads `h1:5001,h2/db` as port 5001 for both hosts and a bad port as a bare ValueError;
    here every host item is checked (all with a port or none), the port list matches the host list, and
    target_session_attrs is one of libpq's values. A bad URL stops the process naming the variable
    (its password masked).
    """
    raw = _raw(name) or default
    parts = urlsplit(raw)

    def bad(why):
        return ImproperlyConfigured(f"{name}={_masked(raw)!r}: {why}; expected {DATABASE_URL_FORM}")

    if parts.scheme not in POSTGRES_SCHEMES:
        raise bad(f"scheme {parts.scheme!r} is not PostgreSQL's")
    try:
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)).items()}
    except ValueError:
        raise bad("a malformed query string") from None
    netloc = parts.netloc.rpartition("@")[2]
    if netloc:
        if "host" in query or "port" in query:
            raise bad("hosts both before the path and in ?host= / ?port=")
        hosts, ports = [], []
        for item in netloc.split(","):
            if item.startswith("["):  # [v6]:port
                host, _, port = item[1:].partition("]")
                port = port.removeprefix(":") if port.startswith(":") or not port else None
            else:
                host, colon, port = item.partition(":")
                port = port if colon else ""
            if not host or port is None or (port and not _port_ok(port)):
                raise bad(f"host item {item!r} is not HOST or HOST:PORT")
            hosts.append(unquote(host))
            ports.append(port)
        if any(ports) and not all(ports):
            raise bad("give every host its port, or none")
        ports = [p for p in ports if p]
    else:
        hosts = query.pop("host", "").split(",") if "host" in query else []
        ports = query.pop("port", "").split(",") if "port" in query else []
        if "" in hosts or not all(_port_ok(p) for p in ports):
            raise bad("an empty host or a bad port in ?host= / ?port=")
        if ports and hosts and len(ports) not in (1, len(hosts)):
            raise bad(f"{len(ports)} ports for {len(hosts)} hosts")
    if not unquote(parts.path).strip("/"):
        raise bad("no database name")
    if query.get("target_session_attrs", "any") not in SESSION_ATTRS:
        raise bad(f"target_session_attrs must be one of {', '.join(sorted(SESSION_ATTRS))}")
    try:
        config = environ.Env.db_url_config(raw)
    except (ValueError, ImproperlyConfigured) as err:
        raise bad(str(err)) from None
    config["ENGINE"] = "django.db.backends.postgresql"
    config["HOST"], config["PORT"] = ",".join(hosts), ",".join(ports)
    options = config.setdefault("OPTIONS", {})
    options.pop("host", None)
    options.pop("port", None)
    return config
