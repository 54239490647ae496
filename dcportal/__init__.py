"""The project: settings, URLs, the ASGI app, the launchers (dev.py, processes.py, server.py).

The Celery app (celery.py) is not imported here: only the Celery processes load it
(`celery -A dcportal` finds dcportal.celery), so daphne and the state workers start
without it. Nothing outside those processes sends a task.
"""
