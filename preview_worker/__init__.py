"""The ``preview-worker`` command line.

It lives apart from :mod:`preview_actors` because importing that package sets
up the broker from the environment; the command line must be able to report
a bad setting as a one-line message rather than a traceback at import.
"""
