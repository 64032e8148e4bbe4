"""``python -m zoneimpact`` entry point."""

from .cli import main

raise SystemExit(main())
