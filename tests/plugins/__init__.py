"""pytest plugins of the cfgate test suite."""
