"""One module per boss command; each imports only click at the top so `boss --help` stays fast."""

from __future__ import annotations
