"""``python -m ctxbase``: the same as the ``ctxbase`` command."""

from ctxbase.cli import main

main()
