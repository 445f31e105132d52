"""A request's life on the API's side: accepting a write (alone or in a batch), its payload, and
the tracker that records every step.
"""
