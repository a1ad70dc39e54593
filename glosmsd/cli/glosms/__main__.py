"""`python -m glosmsd.cli.glosms`: the `glosms` command."""

import sys

from glosmsd.cli.glosms import main

sys.exit(main())
