"""Private runtime: the agent process entry point and the supervisor."""
