"""``python -m servent`` is the same as the ``servent`` command."""

from servent.cli.main import main

raise SystemExit(main())
