"""`manage.py install_ocf [--provider P] [--prefix DIR]`: install the OCF resource agents.

Agents go to <prefix>/usr/lib/ocf/resource.d/<provider>/ (mode 0755), where Pacemaker
looks for ocf:<provider>:<agent>; the shell code they share goes to
<prefix>/usr/lib/ocf/lib/dcportal/ (mode 0644), found relative to the agent's own path.
Each file is written next to its target and renamed over it, so a monitor running
during an upgrade sees the old or the new agent, never half of one.
"""

import os
import re
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

OCF_SOURCE = Path(settings.BASE_DIR) / "ocf"
SHARED = "dcportal-ocf.sh"
AGENT_NAME = re.compile(r"^dcportal-[a-z-]+$")


def agents():
    return sorted(p for p in OCF_SOURCE.iterdir() if p.is_file() and AGENT_NAME.match(p.name))


def install_file(source, target, mode):
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(source.read_bytes())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = "Install the dcportal OCF resource agents under <prefix>/usr/lib/ocf/resource.d/<provider>/."

    def add_arguments(self, parser):
        parser.add_argument("--provider", default="dcportal", help="OCF provider directory (ocf:<provider>:<agent>)")
        parser.add_argument("--prefix", default="/", help="root to install under (tests, packaging)")

    def handle(self, *args, **options):
        provider = options["provider"]
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", provider) or provider in {".", ".."}:
            raise CommandError(f"invalid provider name {provider!r}")
        ocf_root = Path(options["prefix"]) / "usr/lib/ocf"
        found = agents()
        if not found:
            raise CommandError(f"no agents in {OCF_SOURCE}")
        # The library first: an agent installed before it could not run.
        lib_dir, agent_dir = ocf_root / "lib/dcportal", ocf_root / "resource.d" / provider
        install_file(OCF_SOURCE / SHARED, lib_dir / SHARED, 0o644)
        for agent in found:
            target = agent_dir / agent.name
            install_file(agent, target, 0o755)
            self.stdout.write(f"installed ocf:{provider}:{agent.name} -> {target}")
        # Pacemaker runs meta-data as an unprivileged user: the directories must be readable whatever the umask.
        for directory in (lib_dir, agent_dir):
            directory.chmod(0o755)
