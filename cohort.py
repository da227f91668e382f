"""Cohort postprocessing: list, info, verify, context. See `python cohort.py --help`."""

if __name__ == "__main__":
    from reasonscape.cli.cohort import main

    main()
