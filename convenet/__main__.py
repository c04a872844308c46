"""``python -m convenet``: the command line."""

from convenet.cli import main
from convenet.settings import quiet_tensorflow

quiet_tensorflow()  # an entry point: the one place the CLI sets an environment variable
raise SystemExit(main())
