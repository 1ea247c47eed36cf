"""Sensors: wait for email."""
