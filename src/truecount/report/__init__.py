"""Renderings of results for people: consoles, letters, files to send."""
