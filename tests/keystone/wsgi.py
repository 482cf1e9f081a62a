"""Keystone's WSGI application for gunicorn.

Keystone parses ``sys.argv`` with oslo.config at import, where it finds
gunicorn's flags and exits: give it none (its config comes from
``OS_KEYSTONE_CONFIG_FILES``).
"""

import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402

__all__ = ["application"]
