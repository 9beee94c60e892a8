"""Amazon Selling Partner API marketplace plugin, with a stateful simulator.

Orders (v2026-01-01 searchOrders/getOrder), shipment confirmation (v0
confirmShipment), seller cancellation (POST_ORDER_ACKNOWLEDGEMENT_DATA feed),
stock (patchListingsItem / JSON_LISTINGS_FEED) and a connection test. Settings,
simulator API and limits are described in ``plugins/amazon/README.md``.

Re-recording the cassettes in ``tests/cassettes/amazon``:

- from the simulator on loopback (what is committed)::

      AMAZON_CASSETTES=record .venv/bin/pytest tests/plugins/amazon/test_cassettes.py

- from Amazon's sandbox with real credentials::

      AMAZON_CASSETTES=sandbox AMAZON_SANDBOX_REGION=NA AMAZON_SELLER_ID=... \\
      AMAZON_LWA_CLIENT_ID=... AMAZON_LWA_CLIENT_SECRET=... AMAZON_REFRESH_TOKEN=... \\
      .venv/bin/pytest tests/plugins/amazon/test_cassettes.py

  The static sandbox answers only the parameters of each model's
  ``x-amzn-api-sandbox`` examples, so only the participations scenario runs
  there; the others skip. Secrets are scrubbed before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.hookspecs import hookimpl
from engine.registry import PlatformSpec
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.settings import AmazonSettings

__all__ = ["AmazonConnector", "AmazonSettings", "register_platforms"]


@hookimpl
def register_platforms(register: Callable[[PlatformSpec], None]) -> None:
    register(
        PlatformSpec(
            name="amazon",
            role="marketplace",
            connector=AmazonConnector,
            settings_model=AmazonSettings,
            description="Amazon Selling Partner API: orders, shipment confirmation, "
            "seller cancellation and stock for one seller and region",
            simulator="plugins.amazon.harness:AmazonSimHarness",
        )
    )
