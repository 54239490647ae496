"""./dev bench [scenario] [options]: run a named benchmark scenario (default: dead-office)."""

import sys

from . import as_of, audit, dead_office, flap, floor, live, onboarding, pages, scale, scaling, soak

SCENARIOS = {
    "dead-office": dead_office.main,
    "scaling": scaling.main,
    "flap": flap.main,
    "soak": soak.main,
    "floor": floor.main,
    "audit": audit.main,
    "live": live.main,
    "as-of": as_of.main,
    "onboarding": onboarding.main,
    "scale": scale.main,
    "pages": pages.main,
}


def main(argv):
    name = argv[0] if argv and not argv[0].startswith("-") else "dead-office"
    args = argv[1:] if argv and argv[0] == name else argv
    if name not in SCENARIOS:
        print(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    return SCENARIOS[name](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
