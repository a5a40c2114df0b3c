@failures
Feature: Every kind of outcome

  Scenario: A passing scenario
    Given a passing step
    * a passing step
    When a passing step
    * a passing step

  Scenario: An assertion failure, then a skipped step
    Given a passing step
    When a step fails an assertion
    Then a passing step

  Scenario: An exception that is not an assertion
    Given a step raises an exception
    Then a passing step

  Scenario: An undefined step
    Given a passing step
    When a step nobody has implemented
    Then a passing step

  Scenario: A pending step
    Given a step that is still pending
    Then a passing step

  @skip
  Scenario: Skipped from before_scenario
    Given a passing step
