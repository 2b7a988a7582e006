"""Spend reports: the one place spend is read for the admin and the API.

``selectors`` holds the read-only queries (window spend, charts, breakdowns, the banner);
nothing here writes a charge or a persona file.
"""
