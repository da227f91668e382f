"""Stage 4: analysis verbs over a dataset's PointsDB. See `python analyze.py --help`."""

if __name__ == "__main__":
    from reasonscape.cli.analyze import main

    main()
