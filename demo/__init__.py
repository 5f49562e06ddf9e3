"""A synthetic shop to try and test the service on (`clv demo-data`): it generates data, it computes none."""
