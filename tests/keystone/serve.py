"""Serve a real Keystone (the PyPI `keystone` package) on 127.0.0.1: run with the Keystone venv's python.

Usage: python serve.py <keystone.conf> <port>. Werkzeug (a Flask dependency, so in that venv) is the WSGI server.
"""

import os
import sys

os.environ["OS_KEYSTONE_CONFIG_FILES"] = sys.argv[1]
PORT = int(sys.argv[2])
sys.argv[1:] = []  # oslo.config reads the command line too

from keystone.server.wsgi import initialize_public_application  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

application = initialize_public_application()
server = make_server("127.0.0.1", PORT, application, threaded=True)
print("keystone serving", flush=True)
server.serve_forever()
