"""daphne with a bound on request bodies: `python -m dcportal.server <daphne's arguments>`.

Twisted, under daphne, buffers a whole request body before the application sees it, and
parses form bodies (urlencoded, multipart) in the reactor: one 42 MB form POST, even
without credentials, stalled every request and websocket of the process for seconds
and grew it by hundreds of MB. Here the body is counted as it arrives (Content-Length
up front, chunked bodies chunk by chunk); past settings.MAX_BODY_BYTES
(DCPORTAL_MAX_BODY_BYTES) the client gets the API's 413 JSON error at once and the
rest of the body is dropped unread. Twisted no longer parses form bodies at all:
daphne hands the raw body to Django, which parses it (and answers a malformed one with
the JSON error shape, not Twisted's bare 400); a chunked body reaches Django with its
Content-Length, which Django needs to read any body at all. No `Server` banner is sent
by default.
"""

import gc
import json
import logging

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from twisted.internet import reactor

logger = logging.getLogger("dcportal.server")  # also when run as __main__

# After the 413, what the client still sends is read and dropped for up to this long,
# then the connection is cut. Closing at once with unread data makes the kernel send a
# reset, which can destroy the 413 before a client that is still sending has read it.
LINGER_SECONDS = 10.0


def _drop(data):
    """Stands in for the channel's dataReceived once the request is refused."""


class BoundedRequest(WebRequest):
    """daphne's request, refusing a body over `max_body_bytes` before it is buffered or parsed."""

    max_body_bytes = None  # set from settings by CommandLineInterface.load_asgi_app
    refusal = b""  # the whole 413 response, likewise

    def __init__(self, *args, **kwargs):
        # Twisted would parse form bodies into request.args, which daphne never reads.
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)
        self.body_bytes = 0
        # Not `chunked`: Twisted's Request uses that name for the *response's* framing, and setting it
        # chunk-framed every answer to a request without Content-Length under its own Content-Length header.
        self.refused = self.body_chunked = False

    def gotLength(self, length):
        """Twisted's hook once the headers are in; `length` is None for a chunked body."""
        self.body_chunked = length is None
        if length is not None and length > self.max_body_bytes:
            self.refuse()
        else:
            super().gotLength(length)

    def handleContentChunk(self, data):
        if self.refused:
            return
        self.body_bytes += len(data)
        if self.body_bytes > self.max_body_bytes:
            self.refuse()
        else:
            super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        if self.refused:
            return
        if self.body_chunked:
            # Django reads CONTENT_LENGTH bytes of the body and no more: without it a chunked body would read as empty.
            self.requestHeaders.setRawHeaders(b"content-length", [b"%d" % self.body_bytes])
        super().requestReceived(command, path, version)

    def refuse(self):
        """Answer 413, stop reading the request into Twisted, close once the client stops sending (or after LINGER)."""
        self.refused = True
        channel, transport = self.channel, self.channel.transport
        peer = transport.getPeer()
        logger.warning("413: request body over %d bytes from %s:%s", self.max_body_bytes, getattr(peer, "host", "?"),
                       getattr(peer, "port", "?"))
        transport.write(self.refusal)
        # Twisted answers `Expect: 100-continue` right after gotLength; after a 413 it must not.
        self.requestHeaders.removeHeader(b"expect")
        channel.dataReceived = _drop
        # Half-close: the client sees the 413 and the end of the response; its EOF closes the connection
        # (HTTPChannel is not half-closeable), else the timer does.
        transport.loseWriteConnection()
        reactor.callLater(LINGER_SECONDS, transport.abortConnection)


class BoundedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedRequest
        return protocol


class Server(daphne.server.Server):
    def run(self):
        # daphne.server.Server.run builds its factory from this module-level name and offers no other hook.
        daphne.server.HTTPFactory = BoundedHTTPFactory
        super().run()


class BoundedCommandLineInterface(CommandLineInterface):
    """daphne's command line, serving with BoundedRequest; without a `Server` banner unless -s names one."""

    description = "dcportal's daphne: request bodies bounded by DCPORTAL_MAX_BODY_BYTES"
    server_class = Server

    def __init__(self):
        super().__init__()
        self.parser.set_defaults(server_name="")

    def load_asgi_app(self, asgi_app_path):
        application = super().load_asgi_app(asgi_app_path)  # sets Django up
        from django.conf import settings

        from api.errors import too_large_body

        BoundedRequest.max_body_bytes = limit = settings.MAX_BODY_BYTES
        body = json.dumps(too_large_body(limit)).encode()
        BoundedRequest.refusal = (b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        # What is loaded now lives as long as the process: out of the collector's way, the full
        # collections that building a 50,000-subcloud list triggers scan only the new objects.
        gc.freeze()
        return application


if __name__ == "__main__":
    BoundedCommandLineInterface.entrypoint()
