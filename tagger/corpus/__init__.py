"""Builds the offline training corpus for the embedded default model from Debian packages."""
