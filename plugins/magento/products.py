"""Finding products by SKU, entity id or EAN attribute, in batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from plugins.magento import mapping
from plugins.magento.client import Filter, Group, MagentoClient
from plugins.magento.mapping import JSON
from plugins.magento.settings import MagentoSettings

PRODUCTS = "/V1/products"
_FIELD = {"sku": "sku", "id": "entity_id"}


def chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def in_groups(field: str, values: Sequence[str]) -> list[Group]:
    """One filter group matching any of ``values``; ``in`` splits on commas, so those go alone."""
    plain = [v for v in values if "," not in v]
    filters = [Filter(field, ",".join(plain), "in")] if plain else []
    filters += [Filter(field, v, "eq") for v in values if "," in v]
    return [filters]


async def products_by(
    client: MagentoClient, settings: MagentoSettings, attribute: str, values: Sequence[str]
) -> dict[str, JSON]:
    """Products keyed by their identification value; unknown values are left out."""
    field = _FIELD.get(attribute, settings.ean_attribute)
    folded = {v.casefold(): v for v in values} if attribute == "sku" else {}
    wanted = set(values)
    out: dict[str, JSON] = {}
    for batch in chunks(values, settings.page_size):
        for product in await client.search_all(
            PRODUCTS, "products_search", in_groups(field, batch)
        ):
            key = mapping.attribute_value(product, attribute, settings.ean_attribute)
            if key is not None and key not in wanted:
                key = folded.get(key.casefold())  # Magento SKUs match case-insensitively
            if key is not None and key in wanted:
                out.setdefault(key, product)
    return out
