"""Stage package: tracing (see the README)."""
