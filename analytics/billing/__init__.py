"""Billing: monthly statements and invoices from the day rollups.

rules.py is the pure arithmetic (Decimal, no database, tested without one);
selectors.py reads usage and invoices; services.py writes drafts and closes months.
"""
