"""The websocket's wire encoding: one text per message, or parts when it is too large (docs/websockets.md)."""

import json

from django.conf import settings


def _dump(value):
    return json.dumps(value, separators=(",", ":"))


# The lists and maps of a message that may be spread over parts.
PART_KEYS = ("subclouds", "faults", "faults_raised", "faults_cleared", "last_change", "names")


def encode(message, limit=None):
    """The message as websocket texts: one when it fits in `limit` bytes, else parts.

    daphne refuses to send a message over its websocket_max_message_size (1 MiB
    by default), and 5,000 subclouds are ~5 MB. Parts carry the same type and
    revision plus "part" (1-based) and "parts"; the lists and last_change are
    spread over them; a client applies the message once it has every part.
    Every item is encoded once (json.dumps escapes to ASCII, so characters are
    bytes) and the parts are put together from those texts.
    """
    limit = limit or settings.PORTAL_WS_MAX_MESSAGE_BYTES
    head = {k: v for k, v in message.items() if k not in PART_KEYS}
    lists = {}  # key -> (is a map, [encoded items])
    for key in PART_KEYS:
        if key in message:
            value = message[key]
            if isinstance(value, dict):
                lists[key] = (True, [f"{_dump(k)}:{_dump(v)}" for k, v in value.items()])
            else:
                lists[key] = (False, [_dump(item) for item in value])
    text = _compose(head, lists, {key: items for key, (_, items) in lists.items()})
    if len(text) <= limit:
        return [text]
    # Room for items in a part: the limit less the head, the keys and a generous "part"/"parts".
    room = limit - len(_compose({**head, "part": 10**6, "parts": 10**6}, lists, {}))
    chunks, size = [{}], 0
    for key, (_, items) in lists.items():
        for item in items:
            if size + len(item) + 1 > room and size:
                chunks.append({})
                size = 0
            chunks[-1].setdefault(key, []).append(item)
            size += len(item) + 1
    return [_compose({**head, "part": i + 1, "parts": len(chunks)}, lists, chunk) for i, chunk in enumerate(chunks)]


def _compose(head, lists, chunk):
    """The JSON object text of `head` plus, for every list of the message, the encoded items in `chunk`."""
    fields = [f"{_dump(k)}:{_dump(v)}" for k, v in head.items()]
    for key, (is_map, _) in lists.items():
        items = ",".join(chunk.get(key, ()))
        fields.append(f'{_dump(key)}:{"{" + items + "}" if is_map else "[" + items + "]"}')
    return "{" + ",".join(fields) + "}"
