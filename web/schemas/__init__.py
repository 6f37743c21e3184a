"""Request and response bodies of the HTTP API, one module per domain (``web/api`` holds the controllers)."""
