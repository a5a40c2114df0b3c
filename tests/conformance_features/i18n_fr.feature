# language: fr
@i18n
Fonctionnalité: Panier en français
  Une description avec des accents : é, è, ê, à, ç.

  Contexte:
    Soit un panier vide

  Scénario: Ajouter une crème brûlée
    Quand j'ajoute 2 "crème brûlée"
    Alors le panier contient 2 articles
    Et le panier n'est pas vide
    Mais le panier ne contient pas de "baguette"

  Plan du scénario: Ajouter <nombre> "<produit>"
    Quand j'ajoute <nombre> "<produit>"
    Alors le panier contient <nombre> articles

    Exemples: Viennoiseries
      | produit          | nombre |
      | croissant        | 3      |
      | pain au chocolat | 1      |

  Règle: Les gros paniers sont acceptés

    Exemple: Un gros panier
      Étant donné que j'ajoute 10 "macaron"
      Alors le panier contient 10 articles
