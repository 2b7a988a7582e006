"""Events and their delivery: the outbox, webhook endpoints and the worker that sends.

Import the public functions from here; the modules behind them are ``models`` (the rows),
``worker`` (the background loop of ``manage.py worker``).
"""
