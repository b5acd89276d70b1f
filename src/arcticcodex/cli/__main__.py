"""``python -m arcticcodex.cli``: the ``arcticcodex`` command, for environments without its console script."""

import sys

from . import cli

sys.exit(cli.main(prog_name="arcticcodex"))
