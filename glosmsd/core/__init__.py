"""The pure cores: rules, JSON-RPC, the link's protocol state, outbox verdicts, search
queries, file types and the error tree.

Plain objects and functions: bytes, values and `now` go in, decisions come out. Nothing here
opens a socket or a file, reads a clock, or imports anything from the layers above.
"""
