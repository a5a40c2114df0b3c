"""Generic steps shared by the conformance features (keyword-independent: all @step)."""

import json

from behave import step

try:  # behave >= 1.3
    from behave.api.pending_step import StepNotImplementedError
except ImportError:  # behave 1.2.6
    StepNotImplementedError = NotImplementedError


@step("a passing step")
def passing(context):
    pass


@step('I remember "{value}"')
def remember(context, value):
    context.remembered.append(value)


@step('the remembered values are "{expected}"')
def remembered_values(context, expected):
    actual = ", ".join(context.remembered)
    assert actual == expected, f"remembered {actual!r}"


@step("the number {value:d}")
def the_number(context, value):
    context.numbers.append(value)


@step("I add the numbers")
def add_numbers(context):
    context.result = sum(context.numbers)


@step("the result is {expected:d}")
def result_is(context, expected):
    assert context.result == expected, f"got {context.result}"


@step("{number:d} is even")
def is_even(context, number):
    assert number % 2 == 0, f"{number} is odd"


@step("the following table:")
def remember_table(context):
    context.last_table = context.table


@step("the table has {count:d} rows")
def table_rows(context, count):
    assert len(context.last_table.rows) == count, context.last_table.rows


@step("the following text:")
def remember_text(context):
    context.last_text = context.text


@step("the text has {count:d} lines")
def text_lines(context, count):
    lines = context.last_text.split("\n")
    assert len(lines) == count, lines


@step("the following JSON:")
def remember_json(context):
    context.last_json = json.loads(context.text)


@step("the JSON has {count:d} items")
def json_items(context, count):
    assert len(context.last_json["items"]) == count, context.last_json


@step("a step fails an assertion")
def fails_assertion(context):
    assert 1 + 1 == 3, "arithmetic is broken on purpose"


@step("a step raises an exception")
def raises(context):
    raise ValueError("something went wrong on purpose")


@step("a step that is still pending")
def pending(context):
    raise StepNotImplementedError("this step is pending on purpose")
