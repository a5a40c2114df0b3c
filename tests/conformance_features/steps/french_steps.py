"""Steps for i18n_fr.feature, written in French."""

from behave import step


@step("un panier vide")
def panier_vide(context):
    context.panier = {}


@step('j\'ajoute {nombre:d} "{produit}"')
def ajouter(context, nombre, produit):
    context.panier[produit] = context.panier.get(produit, 0) + nombre


@step("le panier contient {nombre:d} articles")
def contient(context, nombre):
    total = sum(context.panier.values())
    assert total == nombre, f"le panier contient {total} articles"


@step("le panier n'est pas vide")
def pas_vide(context):
    assert context.panier, "le panier est vide"


@step('le panier ne contient pas de "{produit}"')
def ne_contient_pas(context, produit):
    assert produit not in context.panier, context.panier
