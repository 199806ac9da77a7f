"""One module per worker command; each imports only click at the top."""

from __future__ import annotations
