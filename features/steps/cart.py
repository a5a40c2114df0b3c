"""A tiny shop domain (products, stock, cart, discounts, checkout) for the demo suite.

It is not part of behave_bstack: it only gives the step definitions something real to
drive. behave also executes this file as a step module; it defines no steps, so that is
harmless.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


class ShopError(Exception):
    """Base class for the shop's business-rule errors."""


class UnknownProductError(ShopError):
    pass


class OutOfStockError(ShopError):
    pass


class InvalidDiscountError(ShopError):
    pass


def money(value: Decimal | str | int) -> Decimal:
    """Round to cents, the way the till does."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: Decimal


class Inventory:
    """Products the shop sells and how many of each are on the shelf."""

    def __init__(self) -> None:
        self._products: dict[str, Product] = {}
        self._stock: dict[str, int] = {}

    def stock(self, product: Product, quantity: int) -> None:
        self._products[product.name] = product
        self._stock[product.name] = self._stock.get(product.name, 0) + quantity

    def product(self, name: str) -> Product:
        try:
            return self._products[name]
        except KeyError:
            raise UnknownProductError(f"the shop does not sell {name!r}") from None

    def available(self, name: str) -> int:
        return self._stock.get(name, 0)

    def check(self, name: str, quantity: int) -> None:
        left = self.available(name)
        if quantity > left:
            raise OutOfStockError(f"only {left} x {name} in stock, {quantity} wanted")

    def take(self, name: str, quantity: int) -> None:
        self.check(name, quantity)
        self._stock[name] -= quantity


def standard_inventory() -> Inventory:
    """The catalogue most scenarios start from."""
    inventory = Inventory()
    for sku, name, price, stock in (
        ("A100", "apple", "0.50", 20),
        ("B200", "bread", "2.25", 5),
        ("C300", "cheese", "4.75", 2),
    ):
        inventory.stock(Product(sku, name, money(price)), stock)
    return inventory


@dataclass(frozen=True)
class Discount:
    code: str
    percent: Decimal = Decimal(0)
    amount_off: Decimal = Decimal(0)

    def apply(self, subtotal: Decimal) -> Decimal:
        reduced = subtotal * (100 - self.percent) / 100 - self.amount_off
        return max(money(reduced), money(0))


DISCOUNTS = {
    "SAVE10": Discount("SAVE10", percent=Decimal(10)),
    "HALF": Discount("HALF", percent=Decimal(50)),
    "FIVEOFF": Discount("FIVEOFF", amount_off=Decimal(5)),
}


@dataclass
class Order:
    number: int
    lines: list[tuple[str, int, Decimal]]
    total: Decimal
    gift_message: str | None = None
    loyalty_points: int = 0

    def receipt(self) -> str:
        rows = [f"Order #{self.number}"]
        rows += [f"{qty} x {name:<10} {amount:>6}" for name, qty, amount in self.lines]
        rows.append(f"{'Total':<14} {self.total:>6}")
        return "\n".join(rows)


@dataclass
class Cart:
    inventory: Inventory
    member: bool = False
    quantities: dict[str, int] = field(default_factory=dict)
    discount: Discount | None = None
    orders_placed: int = 0

    def add(self, name: str, quantity: int = 1) -> None:
        self.inventory.product(name)  # reject unknown products early
        self.quantities[name] = self.quantities.get(name, 0) + quantity

    def remove(self, name: str) -> None:
        self.quantities.pop(name, None)

    def quantity(self, name: str) -> int:
        return self.quantities.get(name, 0)

    def item_count(self) -> int:
        return sum(self.quantities.values())

    def is_empty(self) -> bool:
        return not self.quantities

    def apply_discount(self, code: str) -> None:
        if code not in DISCOUNTS:
            raise InvalidDiscountError(f"unknown discount code: {code}")
        self.discount = DISCOUNTS[code]

    def _lines(self) -> list[tuple[str, int, Decimal]]:
        return [
            (name, qty, money(self.inventory.product(name).price * qty))
            for name, qty in self.quantities.items()
        ]

    def total(self) -> Decimal:
        subtotal = money(sum((amount for _, _, amount in self._lines()), Decimal(0)))
        return self.discount.apply(subtotal) if self.discount else subtotal

    def summary(self) -> str:
        parts = ", ".join(f"{qty} x {name}" for name, qty in self.quantities.items())
        return f"cart: {parts or 'empty'} = {self.total()}"

    def checkout(self, gift_message: str | None = None) -> Order:
        # Check every line first so a failed checkout leaves the stock untouched.
        for name, qty in self.quantities.items():
            self.inventory.check(name, qty)
        for name, qty in self.quantities.items():
            self.inventory.take(name, qty)
        self.orders_placed += 1
        total = self.total()
        order = Order(
            number=self.orders_placed,
            lines=self._lines(),
            total=total,
            gift_message=gift_message,
            loyalty_points=int(total) if self.member else 0,
        )
        self.quantities.clear()
        self.discount = None
        return order
