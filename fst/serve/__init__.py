"""`fst serve`: the demo web page and the HTTP API (needs the ``serve`` extra: ``pip install "fst-style[serve]"``).

The ASGI app and its limits are in ``fst.serve.app``; the page's HTML, CSS and JavaScript in ``static/``.
"""
