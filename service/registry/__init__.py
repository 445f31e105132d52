"""What Hostmaster manages and for whom: the registered zones, the desired RRsets as read, the API
clients and their quotas.
"""
