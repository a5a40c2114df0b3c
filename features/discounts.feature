@discounts
Feature: Discount codes
  A discount code lowers the cart total; an unknown code changes nothing.

  Background:
    Given the standard catalogue is in stock

  Scenario Outline: A discount code lowers the total
    Given a cart with <quantity> "<product>"
    When I apply the discount code "<code>"
    Then the cart total is <total>

    @smoke
    Examples: Percentage codes
      | product | quantity | code   | total |
      | bread   | 2        | SAVE10 | 4.05  |
      | cheese  | 2        | HALF   | 4.75  |

    Examples: Fixed amount codes
      | product | quantity | code    | total |
      | apple   | 10       | FIVEOFF | 0.00  |
      | cheese  | 2        | FIVEOFF | 4.50  |

  Scenario: An unknown code is rejected
    Given a cart with 1 "bread"
    When I try to apply the discount code "BOGUS"
    Then the discount is rejected with "unknown discount code: BOGUS"
    And the cart total is 2.25
