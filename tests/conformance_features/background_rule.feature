@structure
Feature: Backgrounds and rules
  A description spread over
  two lines.

  Background: Feature-level setup
    Given a passing step
    And I remember "feature background"

  Scenario: Plain scenario after a feature background
    When I remember "plain"
    Then the remembered values are "feature background, plain"

  @rule_tag
  Rule: A rule with its own background

    Background: Rule-level setup
      Given I remember "rule background"

    Scenario: First scenario in the rule
      When I remember "first"
      Then the remembered values are "feature background, rule background, first"

    @scenario_tag
    Scenario: Second scenario in the rule
      Then the remembered values are "feature background, rule background"

  Rule: A rule without a background

    Scenario: Only the feature background applies
      Then the remembered values are "feature background"

    Scenario Outline: An outline inside a rule: <word>
      When I remember "<word>"
      Then the remembered values are "feature background, <word>"

      Examples:
        | word |
        | one  |
        | two  |
