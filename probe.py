"""ReasonScape probe.py: raw-trace forensics on chosen points (fft, failure, truncation)."""

from reasonscape.cli.probe import main

if __name__ == "__main__":
    main()
