"""``python -m convenet``: the command line."""

from convenet.cli import main

raise SystemExit(main())
