"""Redis keys shared by the audit's processes: leases (locks with expiry) and small records.

They live on the broker's Redis DB under the broker's key prefix, so a test
run (its own prefix) never sees another run's locks.
"""

import json
import uuid
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

import redis
from django.conf import settings

from state.redis_client import redis_client

# Compare-and-act scripts: only the holder of a lease may renew or release it.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def _redis_py_url(broker_url):
    """kombu's redis+socket:///path?virtual_host=N is redis-py's unix:///path?db=N."""
    parts = urlsplit(broker_url)
    if parts.scheme in ("redis+socket", "socket"):
        db = parse_qs(parts.query).get("virtual_host", ["0"])[0]
        return f"unix://{parts.path}?db={db}"
    return broker_url


@lru_cache(maxsize=1)
def client():
    if settings.REDIS_SENTINEL and settings.CELERY_BROKER_URL.startswith("sentinel://"):
        return redis_client(settings.CELERY_REDIS_DB, socket_timeout=10, socket_connect_timeout=5, decode_responses=True)
    return redis.Redis.from_url(
        _redis_py_url(settings.CELERY_BROKER_URL), socket_timeout=10, socket_connect_timeout=5, decode_responses=True
    )


def key(name):
    return f"{settings.CELERY_KEY_PREFIX}audit:{name}"


class Lease:
    """A lock with an expiry: whoever dies holding it stops blocking the others after `seconds`."""

    def __init__(self, name, seconds):
        self.key = key(name)
        self.ms = max(1, int(seconds * 1000))
        self.token = None

    def acquire(self):
        token = uuid.uuid4().hex
        if client().set(self.key, token, nx=True, px=self.ms):
            self.token = token
            return True
        return False

    def renew(self):
        return bool(self.token and client().eval(_RENEW, 1, self.key, self.token, self.ms))

    def release(self):
        if self.token:
            client().eval(_RELEASE, 1, self.key, self.token)
            self.token = None

    def holder(self):
        return client().get(self.key)

    @classmethod
    def held_by(cls, name, token, seconds):
        """The lease as seen by another process that was handed its token."""
        lease = cls(name, seconds)
        lease.token = token
        return lease


def put_json(name, value, seconds=None):
    client().set(key(name), json.dumps(value), ex=int(seconds) if seconds else None)


def get_json(name):
    raw = client().get(key(name))
    return json.loads(raw) if raw else None
