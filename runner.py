from reasonscape.cli.runner import main

if __name__ == "__main__":
    main()
