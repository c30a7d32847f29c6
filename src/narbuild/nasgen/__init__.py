"""Stage package: nasgen (see the README)."""
