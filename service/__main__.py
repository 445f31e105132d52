"""``python -m service``: run the API (same as ``hostmaster run api``)."""

import sys

from service.cli.main import main

sys.exit(main(["run", "api", *sys.argv[1:]]))
