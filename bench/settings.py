"""Settings for bench/booking.py: the project's, plus a baseline endpoint."""

from core.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# Booking emails are rendered (templates, invitation) as in production, not written out:
# the console backend would print every one into the benchmark's output.
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
# As in production: booking emails are queued in the booking's transaction for
# `manage.py db_worker`, not composed in the request (README: "Background work").
TASKS = {"default": {"BACKEND": TASK_BACKENDS["database"]}}  # noqa: F405
