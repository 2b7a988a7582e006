"""Prices: the genai-prices catalogue under the operator's prices.toml, one cached lookup.

Data flows one way: the API, the admin and the commands ask :mod:`.quote` (or
:func:`.resolve.resolve_price`); it reads :mod:`.store` (the file) and :mod:`.catalogue`
(the bundled data); :mod:`.rates` does the arithmetic.
"""
