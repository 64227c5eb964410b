"""The canvas host: the instance's canvas folder over HTTP on base+4, with live reload.

- :mod:`moltbot.canvas.host`: the ``canvas`` subsystem (``CanvasHost``)
- :mod:`moltbot.canvas.files`: path resolution that never leaves the root
- :mod:`moltbot.canvas.livereload`: the file watcher and the injected page script
"""

__all__: list[str] = []
