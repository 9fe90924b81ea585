"""The command center's pages and their words."""
