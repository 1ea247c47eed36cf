"""Operators: the data mapper step and the Send Email step."""
