"""Share result folders and PointsDB files as content-addressed blobs. See `python data.py --help`."""

if __name__ == "__main__":
    from reasonscape.cli.data import main

    main()
