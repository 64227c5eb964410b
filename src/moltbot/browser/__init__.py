"""Browser control: a loopback HTTP service on base+2 driving Chromium over CDP.

- :mod:`moltbot.browser.service`: the ``browser`` subsystem (``BrowserService``)
- :mod:`moltbot.browser.routes`: the route table shared by HTTP, ``browser.request``
  and the agent tool
- :mod:`moltbot.browser.client`: the synchronous HTTP client the CLI uses
- :mod:`moltbot.browser.config`, :mod:`moltbot.browser.ports`: profile settings and
  CDP port allocation (pure)

Nothing is imported here, so ``import moltbot.browser`` stays cheap.
"""

__all__: list[str] = []
