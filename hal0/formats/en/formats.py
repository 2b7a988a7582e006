"""Date formats of the operators' admin: every time says its timezone (``2026-12-02 14:05
UTC``), so an operator never wonders whether a time is local, UTC or the server's."""

DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i T"
