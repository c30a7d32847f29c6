"""Stage package: encoder (see the README)."""
