"""What the operating system gives every glosmsd process: its places on disk and the
helpers that create and write them safely.

Used by the daemon, the frontends and the server alike; it knows nothing about messages.
"""
