"""Steps for the catalogue and the cart."""

import logging

from behave import given, step, then, when
from cart import Cart, Inventory, Product, ShopError, money, standard_inventory

log = logging.getLogger("shop.cart")


# Each table/doc-string step is registered twice: behave 1.3 keeps the trailing colon
# of "...products:" in the step text, behave 1.2.6 strips it.


def _new_cart(context, inventory: Inventory) -> None:
    context.inventory = inventory
    context.cart = Cart(inventory)


@given("the shop sells these products:")
@given("the shop sells these products")
def shop_sells(context):
    inventory = Inventory()
    for row in context.table:
        product = Product(row["sku"], row["name"], money(row["price"]))
        inventory.stock(product, int(row["stock"]))
    _new_cart(context, inventory)


@given("the standard catalogue is in stock")
def standard_catalogue(context):
    _new_cart(context, standard_inventory())


@given("an empty cart")
def empty_cart(context):
    assert context.cart.is_empty(), f"expected an empty cart, got {context.cart.summary()}"


@given('a cart with {quantity:d} "{product}"')
def cart_with(context, quantity, product):
    context.cart.add(product, quantity)


@step('I add {quantity:d} "{product}" to the cart')
def add_product(context, quantity, product):
    context.cart.add(product, quantity)


@when("I add these products to the cart:")
@when("I add these products to the cart")
def add_products(context):
    for row in context.table:
        context.cart.add(row["product"], int(row["quantity"]))


@when('I remove "{product}" from the cart')
def remove_product(context, product):
    context.cart.remove(product)


@when('I apply the discount code "{code}"')
def apply_discount(context, code):
    context.cart.apply_discount(code)


@when('I try to apply the discount code "{code}"')
def try_discount(context, code):
    try:
        context.cart.apply_discount(code)
        context.discount_error = None
    except ShopError as exc:
        context.discount_error = str(exc)


@when("I print the cart summary")
def print_summary(context):
    print(context.cart.summary())


@step("the cart logs its total")
def log_total(context):
    log.info("cart total is %s", context.cart.total())


@then('the discount is rejected with "{message}"')
def discount_rejected(context, message):
    assert context.discount_error == message, f"got {context.discount_error!r}"


@then('the cart contains {quantity:d} "{product}"')
def cart_contains(context, quantity, product):
    actual = context.cart.quantity(product)
    assert actual == quantity, f"expected {quantity} x {product}, got {actual}"


@then('the cart does not contain "{product}"')
def cart_lacks(context, product):
    assert context.cart.quantity(product) == 0, context.cart.summary()


@then("the cart holds {count:d} items")
def cart_holds(context, count):
    assert context.cart.item_count() == count, context.cart.summary()


@step("the cart total is {amount}")
def cart_total(context, amount):
    actual = context.cart.total()
    assert actual == money(amount), f"expected total {amount}, got {actual}"


@then("the cart is empty")
def cart_is_empty(context):
    assert context.cart.is_empty(), context.cart.summary()
