"""The HTTP edge both servers share (the gateway, the read API): timeouts and limits on
clients, aiohttp's server internals in one module, OpenAPI pieces."""
