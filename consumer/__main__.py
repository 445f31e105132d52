"""``python -m consumer``: not built yet; it exits with a clear message instead of pretending."""

import sys

sys.stderr.write("hostmaster consumer: the Kafka entry point is not built yet (see docs/architecture.md)\n")
sys.exit(2)
