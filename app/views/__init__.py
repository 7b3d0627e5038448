"""One file per view; every view reads and writes the `Session` and never talks to another view."""
