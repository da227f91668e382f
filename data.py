"""ReasonScape data.py (not built yet: prints a one-line notice)."""

from reasonscape.cli.pending import main

if __name__ == "__main__":
    main("data")
