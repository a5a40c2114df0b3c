@outlines
Feature: Scenario outlines

  Scenario Outline: Adding <a> and <b> gives <sum>
    Given the number <a>
    And the number <b>
    When I add the numbers
    Then the result is <sum>

    @small
    Examples: Small numbers
      | a | b | sum |
      | 1 | 2 | 3   |
      | 1 | 2 | 3   |
      | 0 | 0 | 0   |

    @large @slow
    Examples: Large numbers
      | a    | b    | sum  |
      | 1000 | 2000 | 3000 |

    Examples:
      | a  | b | sum |
      | -1 | 1 | 0   |

  Scenario Outline: Placeholders in a data table and a doc string
    Given the following table:
      | name   | role   |
      | <name> | <role> |
    And the following text:
      """
      Dear <name>,
      your role is <role>.
      """
    Then the table has 1 rows
    And the text has 2 lines

    Examples: People
      | name  | role  |
      | Alice | admin |
      | Bob   | user  |
      | Bob   | user  |

  Scenario Outline: Only odd rows fail
    Then <number> is even

    Examples:
      | number |
      | 2      |
      | 3      |
      | 4      |
