"""The history side: definition versions with their effective dates, and the replay of
every period under every version as known at a date."""
