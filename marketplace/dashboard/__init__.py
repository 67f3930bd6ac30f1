"""The web dashboard: static pages and scripts in `static/`, served at `/` by `install_dashboard`."""
