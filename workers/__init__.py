"""Dramatiq workers: they apply desired RRsets to the authoritative servers and verify them."""
