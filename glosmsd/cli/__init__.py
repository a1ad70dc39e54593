"""The command lines: `glosms` (the socket's frontend), and `glosmsd` (the daemon's entry,
the demo, `setup`, `doctor`, autostart).
"""
