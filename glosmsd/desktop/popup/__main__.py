"""`python -m glosmsd.desktop.popup`: the quick-send popup (what the tray starts)."""

from glosmsd.desktop.popup.window import main

raise SystemExit(main())
