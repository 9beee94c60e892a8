"""Building blocks for platform simulators and plugin tests.

- :mod:`engine.testing.ratelimit`: token-bucket rate limiting as ASGI middleware.
- :mod:`engine.testing.faults`: fault injection (429, 5xx, timeouts, resets).
- :mod:`engine.testing.conformance`: the connector conformance suites.
- :mod:`engine.testing.pytest_plugin`: fixtures, registered under ``pytest11``.
"""
