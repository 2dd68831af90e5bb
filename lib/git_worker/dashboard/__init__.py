"""`git worker watch`: what the dashboard shows (model.py, plain Python, also behind
`watch --once`) and the full-screen program that shows it (app.py, the only module that
imports Textual)."""
