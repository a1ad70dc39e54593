"""The reference SMS server, `glosmsd-server`: its own process, database and protocol endpoint."""
