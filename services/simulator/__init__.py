"""A wire-compatible Kite Connect simulator (REST + KiteTicker) replaying real NSE data.

Run it with `python -m services.simulator` (or `tradealgo sim`); in tests use
`services.simulator.runner.SimulatorThread` or the `kite_sim` fixture (tests/sim_fixtures.py).
"""
