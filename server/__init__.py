"""The voiceprint HTTP service: a thin Flask adapter over :mod:`vpcore`.

``create_app(config=None, model=None)`` builds the WSGI application;
``vpcore-server`` / ``python -m server`` runs it under gunicorn. See
:mod:`server.config` for the ``VPCORE_*`` environment variables and
``server/openapi.json`` (also served at ``GET /openapi.json``) for the API.
"""

from .app import create_app

__all__ = ["create_app"]
