"""The ASGI audit middleware: capture, identity, mapping, redaction."""
