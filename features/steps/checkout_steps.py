"""Steps for checkout, receipts and loyalty points."""

from behave import given, then, when

# Doc-string steps are registered with and without the trailing colon: behave 1.3 keeps
# it in the step text, behave 1.2.6 strips it.


@given("I am a loyalty member")
def loyalty_member(context):
    context.cart.member = True


@when("I check out")
def check_out(context):
    context.order = context.cart.checkout()


@when("I check out with the gift message:")
@when("I check out with the gift message")
def check_out_gift(context):
    context.order = context.cart.checkout(gift_message=context.text)


@then("the receipt reads:")
@then("the receipt reads")
def receipt_reads(context):
    actual = context.order.receipt()
    assert actual == context.text, f"receipt was:\n{actual}"


@then('{quantity:d} "{product}" are left in stock')
def left_in_stock(context, quantity, product):
    actual = context.inventory.available(product)
    assert actual == quantity, f"expected {quantity} x {product} in stock, got {actual}"


@then("the order carries a gift message of {count:d} lines")
def gift_message_lines(context, count):
    lines = context.order.gift_message.splitlines()
    assert len(lines) == count, f"gift message was {lines!r}"


@then("I have earned {points:d} loyalty points")
def earned_points(context, points):
    assert context.order.loyalty_points == points, f"got {context.order.loyalty_points}"
