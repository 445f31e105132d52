"""``python -m service.cli``: the ``hostmaster`` command."""

from service.cli.main import main

raise SystemExit(main())
