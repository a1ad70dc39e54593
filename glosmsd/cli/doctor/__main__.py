from glosmsd.cli.doctor import main

raise SystemExit(main())
