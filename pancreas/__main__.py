"""``python -m pancreas``: the same as the ``pancreas`` command."""

from pancreas.cli import main

raise SystemExit(main())
