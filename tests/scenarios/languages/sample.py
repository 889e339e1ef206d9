"""Inventory helpers used by the warehouse service."""

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)
DEFAULT_LIMIT = 100


@dataclass
class Item:
    """One stock-keeping unit."""

    sku: str
    quantity: int = 0

    def restock(self, amount: int) -> int:
        """Add ``amount`` units and return the new quantity."""
        if amount < 0:
            raise ValueError("amount must be positive")
        self.quantity += amount
        log.debug("restocked %s to %d", self.sku, self.quantity)
        return self.quantity

    @property
    def empty(self) -> bool:
        return self.quantity == 0


def total_quantity(items: list[Item]) -> int:
    """Sum of quantities over ``items``."""
    return sum(item.quantity for item in items)


if __name__ == "__main__":
    print(total_quantity([Item("a", 1), Item("b", 2)]))
