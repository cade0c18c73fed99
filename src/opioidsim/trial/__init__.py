"""Virtual clinical trials: simulation, statistics, CONSORT flow and report."""
