"""Sample data that ships with dropq: ``contacts.csv``, the input of ``dropq demo``.

Installed as ``dropq.examples`` so that the demo runs from a wheel, not only from a checkout.
"""
