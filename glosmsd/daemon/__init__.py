"""What runs inside the daemon: the server link, the store, the service (use cases), the
socket server and its method table, the event hub, media, export, and the composition root
(`root`) that builds and runs them.
"""
