"""Real-browser tests of the connection forms (headless Chromium through Playwright)."""
