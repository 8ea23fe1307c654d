"""``python -m claw_governance.cli``: the same as ``claw-gov``."""

from claw_governance.cli import main

main()
