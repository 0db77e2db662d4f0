"""Layer 6 (front end): the ``servent`` command line."""
