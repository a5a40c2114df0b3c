@unicode
Feature: Unicode everywhere ✨ café, naïve, Zürich

  Scenario: Emoji in names and steps 🚀🎉
    Given I remember "🍕 pizza"
    Then the remembered values are "🍕 pizza"

  Scenario: שלום עולם and مرحبا بالعالم (right-to-left)
    Given I remember "مرحبا بالعالم"
    And I remember "שלום"
    Then the remembered values are "مرحبا بالعالم, שלום"

  @ünïcödé
  Scenario: Accents: crème brûlée, jalapeño, Ångström
    Given the following table:
      | mot         | langue   |
      | crème       | français |
      | Straße      | Deutsch  |
      | 日本語      | 日本語   |
    Then the table has 3 rows
