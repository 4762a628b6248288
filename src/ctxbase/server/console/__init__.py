"""The web console: every capability on a page, served by ``ctxbase serve`` at ``/console``.

Server-rendered (Jinja2 templates, htmx for partial updates, both served from the
package: no build step, no CDN). A person signs in with an API key, exchanged for a
session cookie; every page acts through the REST API with that key, so the console can do
exactly what the key may do over HTTP. See ``docs/console.md``.
"""

from ctxbase.server.console.app import CONSOLE_PATH, create_console, install_console

__all__ = ["CONSOLE_PATH", "create_console", "install_console"]
