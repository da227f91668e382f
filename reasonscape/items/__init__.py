"""Item collections ReasonScape ships or generates for `items:<name>` tasks (see docs/items.md)."""
