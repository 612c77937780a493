"""Talking to the peers' brick daemons."""
