"""The frontends' side of the daemon's socket: a small blocking JSON-RPC client.

Standard library only, so `glosms` and the popup start fast.
"""
