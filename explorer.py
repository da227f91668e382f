"""ReasonScape explorer.py: the explorer web app. See `python explorer.py --help` and docs/webapps.md."""

from reasonscape.cli.webapps import main

if __name__ == "__main__":
    main("explorer")
