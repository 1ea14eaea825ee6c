"""``python -m lprctl``."""

from lprctl.main import main

main()
