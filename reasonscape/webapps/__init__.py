"""The three Dash web apps (leaderboard, explorer, spiderweb) over one PointsDB.

Each app module has `build_app(source, ...) -> dash.Dash`; `server` holds what they share (opening
the dataset before the server starts, the base path, binding the port, the DB lock), `state` the
pure helpers (URL state, filters from UI selections), `figures` the plotly figure builders.
"""
