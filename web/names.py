"""Names the HTTP layer shares across modules, kept out of ``web.pages`` (importing it loads every controller)."""

CONSOLE_COOKIE = "ql_console"
"""The console's session cookie (``web.pages.sessions``), declared as a security scheme in the OpenAPI document."""
