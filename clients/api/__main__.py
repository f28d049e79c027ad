"""``python -m clients.api``: serve the API with uvicorn on the configured address."""

from __future__ import annotations

import uvicorn

from clients.api.app import create_app
from config import logging as fp_logging
from config.settings import Settings


def main() -> None:
    settings = Settings.load()
    fp_logging.configure("api", level=settings.log_level, fmt=settings.log_format)
    app = create_app(settings)
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
