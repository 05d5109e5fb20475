"""Command groups of the ``forget`` command line; ``forget/cli.py`` assembles them."""
