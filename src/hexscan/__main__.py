"""``python -m hexscan`` is the same as the ``hex`` command."""

from hexscan.cli import main

if __name__ == "__main__":
    main()
