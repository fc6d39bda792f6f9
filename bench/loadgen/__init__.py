"""Load generators: ``wrk`` (closed loop) and an open-loop constant-rate client on uvloop."""
