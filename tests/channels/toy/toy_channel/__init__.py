"""A toy messaging channel installed as a separate distribution (tests only)."""
