"""Stage 3: aggregate result NDJSON into a PointsDB. See `python evaluate.py --help`."""

if __name__ == "__main__":
    from reasonscape.cli.evaluate import main

    main()
