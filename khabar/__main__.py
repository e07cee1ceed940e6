"""``python -m khabar``: the same as the ``khabar`` command."""

from khabar.bot.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
