"""What one websocket may cost and how long it may live: the close codes, and the per-user socket cap.

The cap counts sockets over every daphne process in Redis: per user a sorted set of socket ids
scored by when their process last vouched for them (each feed refreshes its sockets every
PORTAL_WS_RECHECK_SECONDS), so the sockets of a killed process stop counting after STALE_SECONDS.
"""

import logging
import math
import uuid

import redis.asyncio as redis
from django.conf import settings

from state.redis_client import redis_client

log = logging.getLogger(__name__)

# Close codes (docs/websockets.md, "Closing").
REVOKED = 4401
LIFETIME = 4408
TOO_MANY = 4429
REASONS = {
    REVOKED: "credential revoked",
    LIFETIME: "maximum socket lifetime reached; reconnect",
    TOO_MANY: "too many open sockets for this user",
}

# Time-checked on Redis's clock (TIME), so processes on other hosts agree.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
_REFRESH = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def stale_seconds():
    """A slot not refreshed for this long belongs to a dead process."""
    return max(30.0, 10 * settings.PORTAL_WS_RECHECK_SECONDS)


class Slots:
    """The open-socket count of each user, shared by every process through Redis (one per feed)."""

    def __init__(self):
        self.redis = redis_client(asynchronous=True, socket_timeout=5, socket_connect_timeout=5)
        self.take_script = self.redis.register_script(_TAKE)
        self.refresh_script = self.redis.register_script(_REFRESH)

    @staticmethod
    def _key(user_id):
        # The channel layer's own prefix (tests give each session its own).
        return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:ws-sockets:{user_id}"

    async def take(self, sock):
        """True if `sock` may stay open (it then holds one of its user's slots). Redis down: allowed (logged)."""
        sock.slot = uuid.uuid4().hex
        stale = stale_seconds()
        try:
            taken = await self.take_script(
                keys=[self._key(sock.credential.user_id)],
                args=[settings.PORTAL_WS_MAX_SOCKETS_PER_USER, sock.slot, stale, math.ceil(stale)],
            )
        except redis.RedisError as err:
            log.warning("socket cap not enforced: Redis unavailable (%s)", err)
            return True
        if not taken:
            sock.slot = None
        return bool(taken)

    async def refresh(self, sockets):
        """Vouch for these sockets' slots (one round trip)."""
        held = [s for s in sockets if getattr(s, "slot", None)]
        if not held:
            return
        stale = math.ceil(stale_seconds())
        async with self.redis.pipeline(transaction=False) as pipe:
            for s in held:
                await self.refresh_script(keys=[self._key(s.credential.user_id)], args=[s.slot, stale], client=pipe)
            await pipe.execute()

    async def release(self, sock):
        slot, sock.slot = getattr(sock, "slot", None), None
        if slot:
            try:
                await self.redis.zrem(self._key(sock.credential.user_id), slot)
            except redis.RedisError as err:
                log.warning("socket slot not released (%s); it expires on its own", err)

    async def close(self):
        await self.redis.aclose()
