"""Tests of the volunteer console: its API, its server and its page in chromium."""
