"""Command-line edges: click groups that parse arguments, call the library and report errors."""
