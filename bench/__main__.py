"""`python -m bench`: the whole performance report (see bench/report.py)."""

from bench.report import main

raise SystemExit(main())
