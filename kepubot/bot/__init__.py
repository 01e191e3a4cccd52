"""The daemon: APScheduler ticks, the database decides."""
