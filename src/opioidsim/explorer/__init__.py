"""The explorer: ``opioidsim explore`` serves a local web app that runs the real engine.

- `opioidsim.explorer.pages`: the pages (controls, how they become a scenario, the panels) and
  their registry; the explorer's limits.
- `opioidsim.explorer.jobs`: runs in a worker thread with progress and cancel.
- `opioidsim.explorer.server`: the HTTP server, its JSON API and the static page (``static/``).

Research and teaching only: never a dosing guide.
"""
