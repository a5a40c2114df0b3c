@data
Feature: Data tables and doc strings

  Scenario: A data table with several columns
    Given the following table:
      | fruit  | colour | count |
      | apple  | red    | 3     |
      | banana | yellow | 12    |
    Then the table has 2 rows

  Scenario: A table with an empty cell and an escaped pipe
    Given the following table:
      | value  | note         |
      |        | empty cell   |
      | a \| b | escaped pipe |
    Then the table has 2 rows

  Scenario: A plain doc string keeps its inner indentation and blank lines
    Given the following text:
      """
      First line
        indented line

      Last line, after a blank one
      """
    Then the text has 4 lines

  Scenario: A doc string with a content type
    Given the following JSON:
      """json
      {"name": "demo", "items": [1, 2, 3]}
      """
    Then the JSON has 3 items

  Scenario: A table and a doc string in the same scenario
    Given the following table:
      | key | value |
      | a   | 1     |
    And the following text:
      """
      only one line
      """
    Then the table has 1 rows
    And the text has 1 lines
