"""Stage package: preprocess (see the README)."""
