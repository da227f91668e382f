"""ReasonScape leaderboard.py: the leaderboard web app. See `python leaderboard.py --help` and docs/webapps.md."""

from reasonscape.cli.webapps import main

if __name__ == "__main__":
    main("leaderboard")
