"""Browser control: a loopback HTTP service on base+2 driving Chromium over CDP.

- :mod:`moltbot.browser.service`: the ``browser`` subsystem (``BrowserService``):
  lifecycle, status, the in-process request entry
- :mod:`moltbot.browser.http`: the control port's guard and HTTP transport
- :mod:`moltbot.browser.profiles`: profile settings at run time, CDP port allocation,
  create/delete/reset
- :mod:`moltbot.browser.supervisor`: one Chromium per profile (attach, adopt, launch, stop)
- :mod:`moltbot.browser.tabs`: tabs and the page a route acts on
- :mod:`moltbot.browser.status`: status views
- :mod:`moltbot.browser.routes`: the route table shared by HTTP, ``browser.request``
  and the agent tool
- :mod:`moltbot.browser.chrome`, :mod:`moltbot.browser.cdp`, :mod:`moltbot.browser.pw`:
  the Chromium process, its DevTools HTTP API, Playwright connections
- :mod:`moltbot.browser.client`: the synchronous HTTP client the CLI uses
- :mod:`moltbot.browser.config`, :mod:`moltbot.browser.ports`: profile settings and
  CDP port allocation (pure)

Nothing is imported here, so ``import moltbot.browser`` stays cheap.
"""

__all__: list[str] = []
