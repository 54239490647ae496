"""dcportal/processes.py's Simulator, launched again into the same (appended) log directory."""

import httpx

from dcportal.processes import Simulator, environment


def test_it_takes_the_url_of_the_simulator_it_started_not_a_previous_one(tmp_path):
    """The log is appended to: a second launch must not read the first one's port (gone) as its own."""
    env = environment("unused", "unused")
    first = Simulator(2, tmp_path, env, prefix="a").start()
    first_url = first.url
    first.stop()
    second = Simulator(2, tmp_path, env, prefix="b").start()
    try:
        assert second.url != first_url
        assert httpx.get(f"{second.url}/control", timeout=10, trust_env=False).status_code == 200
    finally:
        second.stop()
