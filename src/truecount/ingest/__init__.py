"""Raw exports in, canonical events out (DESIGN §5)."""
