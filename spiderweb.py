"""ReasonScape spiderweb.py: the spiderweb web app. See `python spiderweb.py --help` and docs/webapps.md."""

from reasonscape.cli.webapps import main

if __name__ == "__main__":
    main("spiderweb")
