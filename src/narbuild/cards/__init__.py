"""Stage package: cards (see the README)."""
