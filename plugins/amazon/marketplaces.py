"""Amazon marketplaces and regional SP-API hosts, kept as data.

Sources: marketplace ids and regions from Amazon's "Marketplace IDs" page and
hosts from "SP-API endpoints" (both summarised with links in the project's
research brief, ``research/amazon-spapi.md`` §2). The store domain and default
currency are the well-known values; ``getMarketplaceParticipations`` returns
the authoritative ones at run time.

``tax_inclusive`` says whether the prices Amazon shows buyers in that store
already contain VAT/GST/consumption tax (EU, UK, TR, Middle East, India, JP,
AU, SG, BR, MX) or have sales tax added at checkout (US, CA).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    code: str
    host: str
    sandbox_host: str


REGIONS: dict[str, Region] = {
    "NA": Region(
        "NA",
        "https://sellingpartnerapi-na.amazon.com",
        "https://sandbox.sellingpartnerapi-na.amazon.com",
    ),
    "EU": Region(
        "EU",
        "https://sellingpartnerapi-eu.amazon.com",
        "https://sandbox.sellingpartnerapi-eu.amazon.com",
    ),
    "FE": Region(
        "FE",
        "https://sellingpartnerapi-fe.amazon.com",
        "https://sandbox.sellingpartnerapi-fe.amazon.com",
    ),
}

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"  # noqa: S105 - an endpoint URL


@dataclass(frozen=True)
class Marketplace:
    id: str
    domain: str
    country_code: str
    """As Amazon prints it (``UK``, not ISO ``GB``)."""
    region: str
    currency: str
    tax_inclusive: bool

    @property
    def name(self) -> str:
        return self.domain


# id, domain, country code, region, currency, tax-inclusive prices
_TABLE: tuple[tuple[str, str, str, str, str, bool], ...] = (
    ("A2EUQ1WTGCTBG2", "Amazon.ca", "CA", "NA", "CAD", False),
    ("ATVPDKIKX0DER", "Amazon.com", "US", "NA", "USD", False),
    ("A1AM78C64UM0Y8", "Amazon.com.mx", "MX", "NA", "MXN", True),
    ("A2Q3Y263D00KWC", "Amazon.com.br", "BR", "NA", "BRL", True),
    ("A28R8C7NBKEWEA", "Amazon.ie", "IE", "EU", "EUR", True),
    ("A1RKKUPIHCS9HS", "Amazon.es", "ES", "EU", "EUR", True),
    ("A1F83G8C2ARO7P", "Amazon.co.uk", "UK", "EU", "GBP", True),
    ("A13V1IB3VIYZZH", "Amazon.fr", "FR", "EU", "EUR", True),
    ("AMEN7PMS3EDWL", "Amazon.com.be", "BE", "EU", "EUR", True),
    ("A1805IZSGTT6HS", "Amazon.nl", "NL", "EU", "EUR", True),
    ("A1PA6795UKMFR9", "Amazon.de", "DE", "EU", "EUR", True),
    ("APJ6JRA9NG5V4", "Amazon.it", "IT", "EU", "EUR", True),
    ("A2NODRKZP88ZB9", "Amazon.se", "SE", "EU", "SEK", True),
    ("AE08WJ6YKNBMC", "Amazon.co.za", "ZA", "EU", "ZAR", True),
    ("A1C3SOZRARQ6R3", "Amazon.pl", "PL", "EU", "PLN", True),
    ("ARBP9OOSHTCHU", "Amazon.eg", "EG", "EU", "EGP", True),
    ("A33AVAJ2PDY3EV", "Amazon.com.tr", "TR", "EU", "TRY", True),
    ("A17E79C6D8DWNP", "Amazon.sa", "SA", "EU", "SAR", True),
    ("A2VIGQ35RCS4UG", "Amazon.ae", "AE", "EU", "AED", True),
    ("A21TJRUUN4KGV", "Amazon.in", "IN", "EU", "INR", True),
    ("A19VAU5U5O7RUS", "Amazon.sg", "SG", "FE", "SGD", True),
    ("A39IBJ37TRP1C6", "Amazon.com.au", "AU", "FE", "AUD", True),
    ("A1VC38T7YXB528", "Amazon.co.jp", "JP", "FE", "JPY", True),
)

MARKETPLACES: dict[str, Marketplace] = {row[0]: Marketplace(*row) for row in _TABLE}


def _key(text: str) -> str:
    key = text.strip().lower()
    for prefix in ("https://", "http://", "www."):
        key = key.removeprefix(prefix)
    return key.rstrip("/")


_BY_NAME: dict[str, Marketplace] = {}
for _m in MARKETPLACES.values():
    _BY_NAME[_key(_m.id)] = _m
    _BY_NAME[_key(_m.domain)] = _m
    _BY_NAME[_m.country_code.lower()] = _m
_BY_NAME["gb"] = MARKETPLACES["A1F83G8C2ARO7P"]


def resolve(value: str) -> Marketplace:
    """Find a marketplace by id (``A1PA6795UKMFR9``), store (``Amazon.de``) or country (``DE``)."""
    found = _BY_NAME.get(_key(value))
    if found is None:
        raise ValueError(
            f"unknown Amazon marketplace {value!r}; use an id such as A1PA6795UKMFR9 "
            f"or a store such as Amazon.de"
        )
    return found


def get(marketplace_id: str) -> Marketplace | None:
    return MARKETPLACES.get(marketplace_id)
