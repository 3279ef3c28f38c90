"""Development kit shared by the tests and tools (never imported by the library or the nodes)."""
