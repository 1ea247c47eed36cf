"""Triggers: poll mailboxes in the triggerer."""
