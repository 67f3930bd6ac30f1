"""`python -m marketplace.cli`: the same as `cmarket`."""

from . import main

main()
