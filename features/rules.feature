# Rule: needs behave >= 1.3. With behave 1.2.6 run: behave --exclude rules.feature features/
@loyalty
Feature: Loyalty points
  Members earn points when they check out; guests do not.

  Background:
    Given the standard catalogue is in stock

  Rule: Members earn one point per whole unit of money spent

    Background:
      Given I am a loyalty member

    Scenario: Points are earned at checkout
      Given a cart with 2 "cheese"
      When I check out
      Then I have earned 9 loyalty points

    @smoke
    Scenario: Small orders earn no points
      Given a cart with 1 "apple"
      When I check out
      Then I have earned 0 loyalty points

  Rule: Guests earn nothing

    Scenario: A guest checks out
      Given a cart with 2 "cheese"
      When I check out
      Then I have earned 0 loyalty points
