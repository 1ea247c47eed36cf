"""Hooks: one authenticated session with an IMAP, POP3 or SMTP server."""
