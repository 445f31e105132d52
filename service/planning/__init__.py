"""Planning a write: the operations of a change set played on the desired state, the rules it must
keep, automatic PTRs.
"""
