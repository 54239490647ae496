"""One way to open a redis-py client for what talks to Redis outside the channel layer and Celery (audit
leases, socket slots): REDIS_URL, or the current master named by the sentinels (settings.REDIS_SENTINEL)."""

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from django.conf import settings


def redis_client(db=None, *, asynchronous=False, **kwargs):
    """A client on DB `db` (default: REDIS_URL's); kwargs go to the client (timeouts, decode_responses)."""
    sentinel = settings.REDIS_SENTINEL
    if sentinel:
        kind = redis.asyncio.sentinel.Sentinel if asynchronous else redis.sentinel.Sentinel
        timeouts = {k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout") if k in kwargs}
        return kind(sentinel["sentinels"], sentinel_kwargs=timeouts).master_for(
            sentinel["master_name"], db=sentinel["db"] if db is None else db, password=sentinel["password"], **kwargs)
    kind = redis.asyncio.Redis if asynchronous else redis.Redis
    return kind.from_url(settings.REDIS_URL, **({} if db is None else {"db": db}), **kwargs)
