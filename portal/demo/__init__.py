"""Demo content for `make run` (``manage.py seed_demo``).

A composition root: it wires accounts, catalog, plans and keys together through their
services, so it lives beside the apps rather than in portal.core, which they all import.
"""
