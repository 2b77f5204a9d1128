"""Ready outcome definitions for what AI vendors bill today, to start from rather than write.

Each definition is a YAML file in this package with a Markdown page beside it (what counts,
which vendor wording it follows, the events it needs, what buyers usually change, its
limits). They use the event vocabulary of ``docs/events.md``, so they run unchanged on any
export mapped to that vocabulary::

    from truecount import library
    for entry in library.entries():
        print(entry.name, entry.category, entry.description)
    definition = library.load("support_resolution_strict")
"""

from truecount.library.catalog import (
    DestinationExistsError,
    Entry,
    LibraryError,
    copy,
    destination,
    entries,
    find,
    load,
    names,
)

__all__ = [
    "DestinationExistsError",
    "Entry",
    "LibraryError",
    "copy",
    "destination",
    "entries",
    "find",
    "load",
    "names",
]
