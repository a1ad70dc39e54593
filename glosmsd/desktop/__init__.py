"""The desktop frontends and adapters: the tray, notifications, the icon, the clipboard,
the quick-send popup, and the bridge that feeds them from the daemon's service.
"""
